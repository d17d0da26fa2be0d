// The small parts of the HTTP ingress that need no server: the per-tenant rate limiter, the
// JSON request reader, RFC 3339 times and Mailgun's %recipient.KEY% substitution.
#include "ingress/http/json_reader.hpp"
#include "ingress/http/mailgun_api.hpp"
#include "ingress/http/rate_limiter.hpp"

#include <boost/json/parse.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace postern::ingress::http {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using clock_type = rate_limiter::clock;
namespace json = boost::json;

json::object object_of(std::string_view text) { return boost::json::parse(text).as_object(); }

// --- rate_limiter ----------------------------------------------------------------------------

TEST(rate_limiter, allows_a_burst_at_once_then_asks_to_wait) {
  rate_limiter limiter;
  const auto t0 = clock_type::time_point() + 1h;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.take("shop", 1, 3, t0), 0ns) << "request " << i;
  // The bucket is empty: the next token comes one second later (rate 1/s).
  EXPECT_EQ(limiter.take("shop", 1, 3, t0), 1s);
}

TEST(rate_limiter, a_rate_of_zero_means_no_limit) {
  rate_limiter limiter;
  const auto t0 = clock_type::time_point() + 1h;
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(limiter.take("shop", 0, 1, t0), 0ns);
}

TEST(rate_limiter, refills_at_the_rate_and_no_further_than_the_burst) {
  rate_limiter limiter;
  const auto t0 = clock_type::time_point() + 1h;
  ASSERT_EQ(limiter.take("shop", 2, 2, t0), 0ns);
  ASSERT_EQ(limiter.take("shop", 2, 2, t0), 0ns);
  EXPECT_EQ(limiter.take("shop", 2, 2, t0), 500ms);
  // Half a second at 2/s is one token.
  EXPECT_EQ(limiter.take("shop", 2, 2, t0 + 500ms), 0ns);
  EXPECT_GT(limiter.take("shop", 2, 2, t0 + 500ms), 0ns);
  // An hour idle fills the bucket to the burst, not to 7200 tokens.
  const auto later = t0 + 1h;
  EXPECT_EQ(limiter.take("shop", 2, 2, later), 0ns);
  EXPECT_EQ(limiter.take("shop", 2, 2, later), 0ns);
  EXPECT_GT(limiter.take("shop", 2, 2, later), 0ns);
}

TEST(rate_limiter, a_refused_request_takes_no_token) {
  rate_limiter limiter;
  const auto t0 = clock_type::time_point() + 1h;
  ASSERT_EQ(limiter.take("shop", 1, 1, t0), 0ns);
  // Asking again and again while empty does not push the next token further away.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(limiter.take("shop", 1, 1, t0 + 500ms), 500ms);
  EXPECT_EQ(limiter.take("shop", 1, 1, t0 + 1s), 0ns);
}

TEST(rate_limiter, waiting_the_answered_time_is_enough) {
  // Rates whose token interval is not a whole number of clock ticks: the answer must not be
  // rounded down, or the client comes back a hair early and is refused again.
  for (const double rate : {3.0, 7.0, 0.3, 1000.0 / 3}) {
    rate_limiter limiter;
    auto now = clock_type::time_point() + 1h;
    ASSERT_EQ(limiter.take("shop", rate, 1, now), 0ns);
    for (int i = 0; i < 20; ++i) {
      const auto wait = limiter.take("shop", rate, 1, now);
      ASSERT_GT(wait, 0ns) << "rate " << rate;
      now += wait;
      ASSERT_EQ(limiter.take("shop", rate, 1, now), 0ns) << "rate " << rate << ", round " << i;
    }
  }
}

TEST(rate_limiter, an_almost_full_token_is_still_a_refusal) {
  // 333333333 ns at 3/s is 0.999999999 tokens: not enough. A wait rounded down to zero would
  // read as "allowed" although no token was taken.
  rate_limiter limiter;
  const auto t0 = clock_type::time_point() + 1h;
  ASSERT_EQ(limiter.take("shop", 3, 1, t0), 0ns);
  EXPECT_GT(limiter.take("shop", 3, 1, t0 + 333333333ns), 0ns);
  EXPECT_EQ(limiter.take("shop", 3, 1, t0 + 333333334ns), 0ns);
}

TEST(rate_limiter, tenants_have_their_own_buckets) {
  rate_limiter limiter;
  const auto t0 = clock_type::time_point() + 1h;
  ASSERT_EQ(limiter.take("shop", 1, 1, t0), 0ns);
  EXPECT_GT(limiter.take("shop", 1, 1, t0), 0ns);
  EXPECT_EQ(limiter.take("bakery", 1, 1, t0), 0ns);
}

TEST(rate_limiter, a_burst_below_one_becomes_two_seconds_worth) {
  rate_limiter limiter;
  const auto t0 = clock_type::time_point() + 1h;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(limiter.take("shop", 5, 0, t0), 0ns) << "request " << i;
  EXPECT_GT(limiter.take("shop", 5, 0, t0), 0ns);
  // And at least one, for rates below one a second.
  rate_limiter slow;
  EXPECT_EQ(slow.take("shop", 0.1, 0, t0), 0ns);
  EXPECT_EQ(slow.take("shop", 0.1, 0, t0), 10s);
}

TEST(rate_limiter, concurrent_takes_hand_out_exactly_the_burst) {
  rate_limiter limiter;
  const auto t0 = clock_type::time_point() + 1h;
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (limiter.take("shop", 1, 50, t0) == 0ns) ++allowed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 50);
}

// --- json_reader -----------------------------------------------------------------------------

TEST(json_reader, reads_fields_of_each_kind) {
  const auto o = object_of(R"({"from":"a@x.example","to":["b@x.example","c@x.example"],"cc":"d@x.example",
                               "track":true,"headers":{"X-B":"2","X-A":"1"},"nothing":null})");
  json_reader r(o);
  EXPECT_EQ(r.string("from"), "a@x.example");
  EXPECT_EQ(r.strings("to"), (std::vector<std::string>{"b@x.example", "c@x.example"}));
  EXPECT_EQ(r.strings("cc"), std::vector<std::string>{"d@x.example"});
  EXPECT_TRUE(r.boolean("track", false));
  // In the order given, not sorted.
  EXPECT_EQ(r.string_map("headers"), (std::vector<std::pair<std::string, std::string>>{{"X-B", "2"}, {"X-A", "1"}}));
  // Null and absent read as absent.
  EXPECT_EQ(r.string("nothing"), std::nullopt);
  EXPECT_EQ(r.string("missing"), std::nullopt);
  EXPECT_TRUE(r.boolean("missing", true));
  EXPECT_TRUE(r.strings("missing").empty());
  EXPECT_TRUE(r.string_map("missing").empty());
  r.refuse_unknown_fields();
  EXPECT_TRUE(r.ok()) << r.error();
}

TEST(json_reader, errors_name_the_field_and_element) {
  const auto o = object_of(R"({"subject":1,"to":["a@x.example",true],"track":"yes","headers":{"X-A":"1","X-B":2},
                               "tags":{}})");
  const auto error_of = [&](auto read) {
    json_reader r(o);
    read(r);
    EXPECT_FALSE(r.ok());
    return r.error();
  };
  EXPECT_EQ(error_of([](json_reader& r) { r.string("subject"); }), "subject: expected a string");
  EXPECT_EQ(error_of([](json_reader& r) { EXPECT_TRUE(r.strings("to").empty()); }), "to[1]: expected a string");
  EXPECT_EQ(error_of([](json_reader& r) { EXPECT_FALSE(r.boolean("track", false)); }), "track: expected true or false");
  EXPECT_EQ(error_of([](json_reader& r) { EXPECT_TRUE(r.string_map("headers").empty()); }),
            "headers.X-B: expected a string");
  EXPECT_EQ(error_of([](json_reader& r) { r.strings("tags"); }), "tags: expected a string or a list of strings");
  EXPECT_EQ(error_of([](json_reader& r) { r.string_map("subject"); }), "subject: expected an object of strings");
}

TEST(json_reader, keeps_the_first_problem) {
  const auto o = object_of(R"({"a":1,"b":2})");
  json_reader r(o);
  r.string("a");
  r.string("b");
  r.fail("c", "made up");
  EXPECT_EQ(r.error(), "a: expected a string");
}

TEST(json_reader, nested_readers_name_fields_with_their_prefix) {
  const auto o = object_of(R"({"recipients":[{"email":"a@x.example","vars":{"n":1}}]})");
  json_reader outer(o);
  const auto* list = outer.value("recipients");
  ASSERT_TRUE(list && list->is_array());
  json_reader inner(list->get_array()[0].get_object(), "recipients[0].");
  EXPECT_EQ(inner.string("email"), "a@x.example");
  inner.string_map("vars");
  EXPECT_EQ(inner.error(), "recipients[0].vars.n: expected a string");
  outer.adopt(inner);
  EXPECT_EQ(outer.error(), "recipients[0].vars.n: expected a string");
  EXPECT_EQ(inner.name("x"), "recipients[0].x");
}

TEST(json_reader, names_a_field_nobody_read) {
  const auto o = object_of(R"({"from":"a@x.example","tracking":true})");
  json_reader r(o);
  r.string("from");
  r.refuse_unknown_fields();
  EXPECT_EQ(r.error(), "tracking: unknown field");
  json_reader all(o);
  all.string("from");
  all.boolean("tracking", false);
  all.refuse_unknown_fields();
  EXPECT_TRUE(all.ok()) << all.error();
  // Reading a field that is absent does not make another one known; the name has its
  // prefix once.
  json_reader nested(o, "recipients[3].");
  nested.string("missing");
  nested.refuse_unknown_fields();
  EXPECT_EQ(nested.error(), "recipients[3].from: unknown field");
}

TEST(json_reader, an_earlier_problem_is_kept_over_an_unknown_field) {
  const auto o = object_of(R"({"from":1,"tracking":true})");
  json_reader r(o);
  r.string("from");
  r.refuse_unknown_fields();
  EXPECT_EQ(r.error(), "from: expected a string");
}

// --- parse_json_object -----------------------------------------------------------------------

TEST(parse_json_object, gives_the_object) {
  const auto p = parse_json_object(R"({"a":"b","n":[1,2]})");
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.object.at("a").as_string(), "b");
  EXPECT_EQ(p.object.at("n").as_array().size(), 2u);
  // Whitespace around the object is fine: curl -d @file sends the file's final newline.
  EXPECT_EQ(parse_json_object(" \r\n{}\n").error, "");
}

TEST(parse_json_object, refuses_what_is_not_an_object) {
  for (const char* text : {"[1,2]", "\"text\"", "42", "null", "true"})
    EXPECT_EQ(parse_json_object(text).error, "the body must be a JSON object") << text;
}

TEST(parse_json_object, errors_name_the_byte) {
  EXPECT_THAT(parse_json_object(R"({"a" 1})").error, HasSubstr("malformed JSON at byte 5: "));
  EXPECT_THAT(parse_json_object(R"({"a":1,"b":[1,2,}x)").error, HasSubstr("at byte 16: "));
  // Truncated: the problem is at the end.
  EXPECT_THAT(parse_json_object(R"({"a":)").error, HasSubstr("at byte 5: "));
  EXPECT_THAT(parse_json_object("").error, HasSubstr("at byte 0: "));
  EXPECT_THAT(parse_json_object("   ").error, HasSubstr("at byte 3: "));
}

TEST(parse_json_object, refuses_numbers_beyond_a_double) {
  // Read as infinity, they would be written back as `Infinity`, which is not JSON.
  for (const char* text : {R"({"a":8e888})", R"({"a":[1,{"b":-1e400}]})"}) {
    EXPECT_EQ(parse_json_object(text).error, "malformed JSON: a number is beyond the range of a double") << text;
  }
  EXPECT_EQ(parse_json_object(R"({"a":1.7e308,"b":-4.9e-324,"c":18446744073709551615})").error, "");
}

TEST(parse_json_object, trailing_data_is_named_as_such) {
  // The byte is where the unexpected text starts, and the reason is not "incomplete".
  const auto error = parse_json_object(R"({"a":1} x)").error;
  EXPECT_THAT(error, HasSubstr("at byte 8: "));
  EXPECT_THAT(error, Not(HasSubstr("incomplete")));
  EXPECT_THAT(error, HasSubstr("extra data"));
  const auto two = parse_json_object(R"({"a":1}{"b":2})").error;
  EXPECT_THAT(two, HasSubstr("at byte 7: "));
  EXPECT_THAT(two, Not(HasSubstr("incomplete")));
}

// --- RFC 3339 --------------------------------------------------------------------------------

std::chrono::system_clock::time_point unix_ms(std::int64_t ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

TEST(rfc3339, parses_utc_and_offsets) {
  // 2026-11-24T10:00:00Z is 1795514400.
  const auto expected = unix_ms(1795514400000);
  EXPECT_EQ(parse_rfc3339("2026-11-24T10:00:00Z"), expected);
  EXPECT_EQ(parse_rfc3339("2026-11-24t10:00:00z"), expected);
  EXPECT_EQ(parse_rfc3339("2026-11-24 10:00:00Z"), expected);
  EXPECT_EQ(parse_rfc3339("2026-11-24T12:00:00+02:00"), expected);
  EXPECT_EQ(parse_rfc3339("2026-11-24T04:30:00-05:30"), expected);
  EXPECT_EQ(parse_rfc3339("2026-11-24T10:00:00+00:00"), expected);
  EXPECT_EQ(parse_rfc3339("2024-02-29T00:00:00Z"), unix_ms(1709164800000));  // a leap day
}

TEST(rfc3339, keeps_fractions_to_the_millisecond) {
  // The events API answers times with milliseconds and takes them back in ?since=; a fraction
  // dropped there would repeat events of the same second.
  EXPECT_EQ(parse_rfc3339("2026-11-24T10:00:00.250Z"), unix_ms(1795514400250));
  EXPECT_EQ(parse_rfc3339("2026-11-24T10:00:00.5Z"), unix_ms(1795514400500));
  EXPECT_EQ(parse_rfc3339("2026-11-24T10:00:00.123456789Z"), unix_ms(1795514400123));
  EXPECT_EQ(parse_rfc3339("2026-11-24T12:00:00.001+02:00"), unix_ms(1795514400001));
}

TEST(rfc3339, formats_utc_with_milliseconds) {
  EXPECT_EQ(format_rfc3339(unix_ms(0)), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(unix_ms(1795514400250)), "2026-11-24T10:00:00.250Z");
  EXPECT_EQ(format_rfc3339(unix_ms(1795514400250) + std::chrono::microseconds(999)), "2026-11-24T10:00:00.250Z");
  // Before 1970 too: the fraction counts forward from the second before.
  EXPECT_EQ(format_rfc3339(unix_ms(-1)), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339(unix_ms(-1000)), "1969-12-31T23:59:59.000Z");
}

TEST(rfc3339, formatting_and_parsing_round_trip) {
  for (const std::int64_t ms : {0LL, 1LL, 999LL, 1000LL, 951782400000LL, 1795514400250LL, 4102444799999LL, -1LL,
                                -999LL, -1000LL, -1001LL, -2208988800000LL}) {
    const auto t = unix_ms(ms);
    EXPECT_EQ(parse_rfc3339(format_rfc3339(t)), t) << format_rfc3339(t);
  }
}

TEST(rfc3339, refuses_what_is_not_a_date_time) {
  for (const char* text : {
           "", "2026-11-24", "2026-11-24T10:00:00",  // no zone: ambiguous
           "2026-11-24T10:00Z", "2026-11-24T10:00:00Zjunk", "2026-11-24T10:00:00 Z", "2026-11-24X10:00:00Z",
           "2026-13-01T10:00:00Z", "2026-00-01T10:00:00Z", "2026-11-00T10:00:00Z", "2026-11-32T10:00:00Z",
           "2026-11-24T24:00:00Z", "2026-11-24T10:60:00Z", "2026-11-24T10:00:61Z",
           "2026-02-29T10:00:00Z", "2026-04-31T10:00:00Z", "2100-02-29T10:00:00Z",  // no such day
           "2026-11-24T-1:00:00Z", "2026-11-24T10:-5:00Z", "2026-11-24T10:00:-1Z",  // signs are not digits
           " 2026-11-24T10:00:00Z", "+2026-11-24T10:00:00Z", "2026-1-24T10:00:00Z", "2026-11-24T1:00:00Z",
           "2026-11-24T10:00:00.Z",  // a fraction needs a digit
           "2026-11-24T10:00:00+2:00", "2026-11-24T10:00:00+02", "2026-11-24T10:00:00+0200",
           "2026-11-24T10:00:00+24:00", "2026-11-24T10:00:00+02:60", "2026-11-24T10:00:00+-1:00",
           "2826-11-24T10:00:00Z", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z"}) {  // beyond the clock
    EXPECT_EQ(parse_rfc3339(text), std::nullopt) << text;
  }
}

// --- substitute_recipient_variables ----------------------------------------------------------

TEST(recipient_variables, replaces_each_placeholder) {
  const auto vars = object_of(R"({"first":"Ann","id":7,"vip":true})");
  EXPECT_EQ(substitute_recipient_variables("Hello %recipient.first%, order %recipient.id% (%recipient.vip%)", vars),
            "Hello Ann, order 7 (true)");
  EXPECT_EQ(substitute_recipient_variables("%recipient.first%%recipient.first%", vars), "AnnAnn");
}

TEST(recipient_variables, unknown_keys_become_empty) {
  const auto vars = object_of(R"({"first":"Ann"})");
  EXPECT_EQ(substitute_recipient_variables("Hi %recipient.last%!", vars), "Hi !");
  EXPECT_EQ(substitute_recipient_variables("Hi %recipient.%!", vars), "Hi !");
  EXPECT_EQ(substitute_recipient_variables("Hi %recipient.first%!", json::object{}), "Hi !");
}

TEST(recipient_variables, leaves_other_text_alone) {
  const auto vars = object_of(R"({"first":"Ann"})");
  EXPECT_EQ(substitute_recipient_variables("", vars), "");
  EXPECT_EQ(substitute_recipient_variables("100% sure, 50% off", vars), "100% sure, 50% off");
  EXPECT_EQ(substitute_recipient_variables("100% sure, %recipient.first%", vars), "100% sure, Ann");
  // Without the closing '%' it is text, not a placeholder.
  EXPECT_EQ(substitute_recipient_variables("Hi %recipient.first", vars), "Hi %recipient.first");
  EXPECT_EQ(substitute_recipient_variables("%RECIPIENT.first%", vars), "%RECIPIENT.first%");
}

TEST(recipient_variables, values_are_not_substituted_again) {
  const auto vars = object_of(R"({"a":"%recipient.b%","b":"B"})");
  EXPECT_EQ(substitute_recipient_variables("[%recipient.a%]", vars), "[%recipient.b%]");
}

}  // namespace
}  // namespace postern::ingress::http
