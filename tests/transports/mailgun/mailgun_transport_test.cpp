#include "mailgun_transport.hpp"

#include "mocks/config_values.hpp"
#include "mocks/mock_host.hpp"
#include "test_http_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <map>
#include <thread>

namespace postern::transports {
namespace {

using namespace std::chrono_literals;
using postern::testing::http_answer;
using postern::testing::http_exchange;
using postern::testing::config_values;
using postern::testing::mock_host;
using postern::testing::test_http_server;
using ::testing::_;
using ::testing::NiceMock;
using ::testing::Return;
using ::testing::ReturnRef;

constexpr const char* key = "key-0123456789abcdef-SECRET";

// The Basic credentials curl sends for api:key-0123456789abcdef-SECRET.
std::string basic_credentials() {
  static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const std::string in = std::string("api:") + key;
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    unsigned n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += i + 1 < in.size() ? table[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? table[n & 63] : '=';
  }
  return "Basic " + out;
}

using setting = postern::testing::config_value;

/// A transport built from a map of settings, as [transports.mailgun] would give them.
class mailgun_test : public ::testing::Test {
 protected:
  std::unique_ptr<mailgun_transport> make(const std::map<std::string, setting>& settings) {
    config_.assign(settings);
    ON_CALL(host_, config()).WillByDefault(ReturnRef(config_));
    ON_CALL(host_, now()).WillByDefault([] { return std::chrono::system_clock::now(); });
    ON_CALL(host_, hostname()).WillByDefault(Return("gw.example"));
    return std::make_unique<mailgun_transport>(host_);
  }

  std::map<std::string, setting> against(const test_http_server& server, std::map<std::string, setting> more = {}) {
    std::map<std::string, setting> s{
        {"domain", std::string("mg.example.com")}, {"base_url", server.url()}, {"api_key", std::string(key)}};
    for (auto& [k, v] : more) s[k] = v;
    return s;
  }

  static postern::delivery_request request(std::vector<std::string> rcpts, std::string raw = "") {
    auto msg = std::make_shared<postern::message>();
    msg->queue_id = "QUEUEID000000001";
    msg->env.mail_from = "shop@example.com";
    for (std::size_t i = 0; i < rcpts.size(); ++i)
      msg->env.recipients.push_back({static_cast<std::uint32_t>(i), rcpts[i], "", 0});
    msg->raw = raw.empty() ? "From: shop@example.com\r\nSubject: hi\r\n\r\nhello\r\n" : raw;
    return {msg, msg->env.recipients};
  }

  /// Delivers and waits for the callback; fails the test if it comes twice.
  static std::vector<postern::recipient_result> run(mailgun_transport& t, postern::delivery_request r,
                                                    std::chrono::seconds limit = 20s) {
    auto promise = std::make_shared<std::promise<std::vector<postern::recipient_result>>>();
    auto calls = std::make_shared<std::atomic<int>>(0);
    auto future = promise->get_future();
    t.deliver(std::move(r), [promise, calls](std::vector<postern::recipient_result> results) {
      if (++*calls == 1)
        promise->set_value(std::move(results));
      else
        ADD_FAILURE() << "done called more than once";
    });
    if (future.wait_for(limit) != std::future_status::ready) {
      ADD_FAILURE() << "no answer within " << limit.count() << "s";
      return {};
    }
    return future.get();
  }

  config_values config_{"test.toml [transports.mailgun]"};
  NiceMock<mock_host> host_;
};

http_response answer(int status, std::string body, std::string retry_after = "") {
  http_response r;
  r.status = status;
  r.body = std::move(body);
  r.retry_after = std::move(retry_after);
  return r;
}

http_response failure(transfer_error e, std::string text) {
  http_response r;
  r.error = e;
  r.error_text = std::move(text);
  return r;
}

const auto now = std::chrono::sys_days(std::chrono::year(2024) / 3 / 5) + 12h;

// --- Retry-After and durations ------------------------------------------------------------

TEST(parse_retry_after, takes_seconds_and_each_http_date_form) {
  EXPECT_EQ(parse_retry_after("120", now), 120s);
  EXPECT_EQ(parse_retry_after("  7 ", now), 7s);
  EXPECT_EQ(parse_retry_after("0", now), 0s);
  // 2024-03-05 12:00:30 GMT, in the three forms RFC 9110 lets a sender use.
  EXPECT_EQ(parse_retry_after("Tue, 05 Mar 2024 12:00:30 GMT", now), 30s);
  EXPECT_EQ(parse_retry_after("Tuesday, 05-Mar-24 12:00:30 GMT", now), 30s);
  EXPECT_EQ(parse_retry_after("Tue Mar  5 12:00:30 2024", now), 30s);
  EXPECT_EQ(parse_retry_after("Tue, 05 Mar 2024 13:00:00 GMT", now), 3600s);
}

TEST(parse_retry_after, past_dates_are_no_wait_and_garbage_is_nothing) {
  EXPECT_EQ(parse_retry_after("Tue, 05 Mar 2024 11:00:00 GMT", now), 0s);
  EXPECT_EQ(parse_retry_after("", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("-5", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("soon", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("Tue, 32 Mar 2024 12:00:00 GMT", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("Tue, 05 Foo 2024 12:00:00 GMT", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("Tue, 05 Mar 2024 12:00:00 GMT trailing", now), std::nullopt);
  // Absurdly long waits are bounded (the engine also stops at the message's expiry).
  EXPECT_EQ(parse_retry_after("99999999999999", now), std::chrono::hours(24 * 366));
}

TEST(parse_duration, reads_units_and_sums) {
  EXPECT_EQ(parse_duration("30s"), 30s);
  EXPECT_EQ(parse_duration("1m30s"), 90s);
  EXPECT_EQ(parse_duration("250ms"), 250ms);
  EXPECT_EQ(parse_duration("2h"), 2h);
  EXPECT_EQ(parse_duration("1d"), 24h);
  EXPECT_EQ(parse_duration("30"), std::nullopt);
  EXPECT_EQ(parse_duration("0s"), std::nullopt);
  EXPECT_EQ(parse_duration("5 s"), std::nullopt);
  EXPECT_EQ(parse_duration("5w"), std::nullopt);
}

// --- The mapping of answers -----------------------------------------------------------------

TEST(map_mailgun_response, a_200_is_delivered_with_mailguns_id) {
  const auto o = map_mailgun_response(
      answer(200, R"({"id": "<20240305120000.1.ABC@mg.example.com>", "message": "Queued. Thank you."})"), now);
  EXPECT_EQ(o.reply.code, 250);
  EXPECT_EQ(o.reply.enhanced, "2.0.0");
  EXPECT_EQ(o.remote_id, "<20240305120000.1.ABC@mg.example.com>");
  EXPECT_EQ(o.reply.text,
            "queued by Mailgun as <20240305120000.1.ABC@mg.example.com> (HTTP 200 OK: Queued. Thank you.)");
  EXPECT_EQ(o.retry_after, 0s);
  // An accepted request without a readable body is still accepted: sending again would duplicate.
  const auto bare = map_mailgun_response(answer(200, "not json"), now);
  EXPECT_EQ(bare.reply.code, 250);
  EXPECT_EQ(bare.remote_id, "");
}

TEST(map_mailgun_response, client_errors_fail_with_mailguns_message_and_the_status) {
  struct expectation {
    int status;
    int code;
    const char* enhanced;
  };
  for (const auto& e : {expectation{400, 554, "5.5.4"}, expectation{401, 554, "5.7.8"}, expectation{403, 554, "5.7.1"},
                        expectation{404, 554, "5.3.5"}, expectation{413, 552, "5.3.4"}}) {
    const auto o =
        map_mailgun_response(answer(e.status, R"({"message": "'to' parameter is not a valid address"})", "30"), now);
    EXPECT_EQ(o.reply.code, e.code) << e.status;
    EXPECT_EQ(o.reply.enhanced, e.enhanced) << e.status;
    EXPECT_NE(o.reply.text.find("HTTP " + std::to_string(e.status) + " " + http_reason(e.status) +
                                ": 'to' parameter is not a valid address"),
              std::string::npos)
        << o.reply.text;
    EXPECT_EQ(o.retry_after, 0s) << "a permanent failure has no retry";
  }
  // No JSON: the status text alone, or a short plain-text body as it came.
  EXPECT_EQ(map_mailgun_response(answer(404, "<html>nginx</html>"), now).reply.text,
            "Mailgun does not know the domain or the endpoint: HTTP 404 Not Found");
  EXPECT_EQ(map_mailgun_response(answer(401, "Forbidden"), now).reply.text,
            "Mailgun refused the API key: HTTP 401 Unauthorized: Forbidden");
}

TEST(map_mailgun_response, rate_limits_and_server_errors_are_retried_after_what_mailgun_asks) {
  const auto limited = map_mailgun_response(answer(429, R"({"message": "Too many requests"})", "30"), now);
  EXPECT_EQ(limited.reply.code, 451);
  EXPECT_EQ(limited.reply.enhanced, "4.4.5");
  EXPECT_EQ(limited.retry_after, 30s);
  EXPECT_EQ(limited.reply.text,
            "Mailgun is rate limiting: HTTP 429 Too Many Requests: Too many requests (retry after 30s)");

  const auto dated = map_mailgun_response(answer(503, "", "Tue, 05 Mar 2024 12:02:00 GMT"), now);
  EXPECT_EQ(dated.reply.code, 451);
  EXPECT_EQ(dated.retry_after, 120s);
  EXPECT_NE(dated.reply.text.find("HTTP 503 Service Unavailable"), std::string::npos) << dated.reply.text;

  for (int status : {500, 502, 504}) {
    const auto o = map_mailgun_response(answer(status, ""), now);
    EXPECT_EQ(o.reply.code, 451) << status;
    EXPECT_EQ(o.retry_after, 0s) << "no Retry-After: the engine's own backoff";
    EXPECT_NE(o.reply.text.find("HTTP " + std::to_string(status)), std::string::npos) << o.reply.text;
  }
  // Statuses Mailgun does not document for this call are retried, not failed.
  for (int status : {302, 402, 408, 422}) EXPECT_EQ(map_mailgun_response(answer(status, ""), now).reply.code, 451);
}

TEST(map_mailgun_response, no_answer_is_a_temporary_failure) {
  const auto timeout = map_mailgun_response(
      failure(transfer_error::timed_out, "Operation timed out after 1000 milliseconds with 0 bytes received"), now);
  EXPECT_EQ(timeout.reply.code, 451);
  EXPECT_EQ(timeout.reply.enhanced, "4.4.1");
  EXPECT_EQ(timeout.reply.text,
            "no answer from Mailgun in time: Operation timed out after 1000 milliseconds with 0 bytes received");
  EXPECT_EQ(map_mailgun_response(failure(transfer_error::cannot_connect, "refused"), now).reply.code, 451);
  EXPECT_EQ(map_mailgun_response(failure(transfer_error::cannot_resolve, "no such host"), now).reply.enhanced, "4.4.3");
  EXPECT_EQ(map_mailgun_response(failure(transfer_error::tls, "bad certificate"), now).reply.code, 451);
  EXPECT_EQ(map_mailgun_response(failure(transfer_error::broken, "reset"), now).reply.code, 451);
  EXPECT_EQ(map_mailgun_response(failure(transfer_error::stopped, "stopping"), now).reply.enhanced, "4.3.2");
}

TEST(map_mailgun_response, texts_are_one_line_and_never_hold_the_key) {
  const auto o =
      map_mailgun_response(answer(400, std::string(R"({"message": "bad\r\nrequest for )") + key + R"("})"), now, key);
  EXPECT_EQ(o.reply.text.find(key), std::string::npos) << o.reply.text;
  EXPECT_EQ(o.reply.text.find('\n'), std::string::npos);
  EXPECT_NE(o.reply.text.find("bad request for [redacted]"), std::string::npos) << o.reply.text;
  const auto long_message =
      map_mailgun_response(answer(400, R"({"message": ")" + std::string(2000, 'x') + R"("})"), now);
  EXPECT_LT(long_message.reply.text.size(), 400u);
}

// --- Settings ----------------------------------------------------------------------------------

TEST_F(mailgun_test, regions_give_mailguns_base_urls_and_base_url_overrides_them) {
  EXPECT_EQ(make({})->settings().base_url, "https://api.mailgun.net");
  EXPECT_EQ(make({{"region", std::string("eu")}})->settings().base_url, "https://api.eu.mailgun.net");
  EXPECT_EQ(
      make({{"region", std::string("eu")}, {"base_url", std::string("http://127.0.0.1:8080/")}})->settings().base_url,
      "http://127.0.0.1:8080");
  const auto t = make({});
  EXPECT_EQ(t->settings().timeout, 30s);
  EXPECT_EQ(t->settings().max_in_flight, 8u);
  EXPECT_FALSE(t->settings().testmode);
  EXPECT_FALSE(t->settings().probe_request);
  EXPECT_EQ(make({{"timeout", std::int64_t{5}}})->settings().timeout, 5s);
  EXPECT_EQ(make({{"timeout", std::string("1m30s")}})->settings().timeout, 90s);
  EXPECT_EQ(make({{"max_in_flight", std::int64_t{3}}})->settings().max_in_flight, 3u);
  EXPECT_TRUE(make({{"testmode", true}})->settings().testmode);
}

TEST_F(mailgun_test, bad_values_are_refused_naming_the_section) {
  const std::vector<std::map<std::string, setting>> bad = {
      {{"region", std::string("asia")}},           {{"base_url", std::string("ftp://example.com")}},
      {{"domain", std::string("mg example.com")}}, {{"domain", std::int64_t{5}}},
      {{"timeout", std::string("soon")}},          {{"timeout", std::int64_t{0}}},
      {{"max_in_flight", std::int64_t{0}}},        {{"max_in_flight", std::string("4")}},
      {{"testmode", std::string("yes")}},          {{"api_key", std::string("k")}, {"api_key_env", std::string("K")}},
  };
  for (const auto& settings : bad) {
    try {
      make(settings);
      ADD_FAILURE() << "accepted " << settings.begin()->first;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("test.toml [transports.mailgun]: "), std::string::npos) << e.what();
    }
  }
}

TEST_F(mailgun_test, the_key_comes_from_the_setting_or_the_named_environment_variable) {
  ::setenv("POSTERN_TEST_MAILGUN_KEY", "key-from-env", 1);
  EXPECT_EQ(make({{"api_key_env", std::string("POSTERN_TEST_MAILGUN_KEY")}})->settings().api_key, "key-from-env");
  ::unsetenv("POSTERN_TEST_MAILGUN_KEY");
  ::setenv("MAILGUN_API_KEY", "key-default-env", 1);
  EXPECT_EQ(make({})->settings().api_key, "key-default-env");
  EXPECT_EQ(make({{"api_key", std::string("key-inline")}})->settings().api_key, "key-inline");
  ::unsetenv("MAILGUN_API_KEY");
  EXPECT_EQ(make({})->settings().api_key, "");
}

// --- probe ------------------------------------------------------------------------------------

TEST_F(mailgun_test, probe_names_what_is_missing) {
  ::unsetenv("MAILGUN_API_KEY");
  auto none = make({})->probe();
  EXPECT_FALSE(none.available);
  EXPECT_NE(none.reason.find("no domain and no API key"), std::string::npos) << none.reason;
  EXPECT_NE(none.reason.find("MAILGUN_API_KEY"), std::string::npos) << none.reason;

  auto no_key = make({{"domain", std::string("mg.example.com")}})->probe();
  EXPECT_FALSE(no_key.available);
  EXPECT_NE(no_key.reason.find("no API key"), std::string::npos) << no_key.reason;

  auto no_domain = make({{"api_key", std::string(key)}})->probe();
  EXPECT_FALSE(no_domain.available);
  EXPECT_NE(no_domain.reason.find("no domain"), std::string::npos) << no_domain.reason;
  EXPECT_EQ(no_domain.reason.find(key), std::string::npos);

  auto ready =
      make({{"api_key", std::string(key)}, {"domain", std::string("mg.example.com")}, {"testmode", true}})->probe();
  EXPECT_TRUE(ready.available);
  EXPECT_EQ(ready.reason, "sends as mg.example.com at https://api.mailgun.net, test mode");
}

TEST_F(mailgun_test, probe_request_asks_mailgun_about_the_domain_with_the_key) {
  int status = 200;
  test_http_server server([&](const http_exchange&) { return http_answer{status, R"({"message": "nope"})", {}}; });
  auto t = make(against(server, {{"probe_request", true}}));
  auto ok = t->probe();
  EXPECT_TRUE(ok.available) << ok.reason;
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].method, "GET");
  EXPECT_EQ(server.requests()[0].target, "/v3/domains/mg.example.com");
  EXPECT_EQ(server.requests()[0].header("authorization"), basic_credentials());

  status = 401;
  auto refused = t->probe();
  EXPECT_FALSE(refused.available);
  EXPECT_NE(refused.reason.find("API key refused"), std::string::npos) << refused.reason;
  EXPECT_EQ(refused.reason.find(key), std::string::npos) << refused.reason;

  status = 404;
  auto unknown = t->probe();
  EXPECT_FALSE(unknown.available);
  EXPECT_NE(unknown.reason.find("does not know the domain mg.example.com"), std::string::npos) << unknown.reason;

  // Mailgun down is no reason to take the transport out of service: deliveries are retried.
  status = 503;
  auto down = t->probe();
  EXPECT_TRUE(down.available);
  EXPECT_NE(down.reason.find("could not check"), std::string::npos) << down.reason;
}

// --- deliver ----------------------------------------------------------------------------------

TEST_F(mailgun_test, posts_the_raw_message_with_a_to_field_per_recipient) {
  test_http_server server([](const http_exchange&) {
    return http_answer{200, R"({"id": "<abc@mg.example.com>", "message": "Queued. Thank you."})", {}};
  });
  auto t = make(against(server, {{"testmode", true}}));
  const std::string raw = "From: shop@example.com\r\nSubject: test\r\n\r\nline one\r\n.\r\nline two\r\n";
  auto results = run(*t, request({"ann@example.com", "bob@example.com"}, raw));
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.reply.code, 250) << r.reply.text;
    EXPECT_EQ(r.remote_id, "<abc@mg.example.com>");
  }
  EXPECT_EQ(results[0].recipient_index, 0u);
  EXPECT_EQ(results[1].recipient_index, 1u);

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& req = requests[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/v3/mg.example.com/messages.mime");
  EXPECT_EQ(req.header("authorization"), basic_credentials());
  ASSERT_TRUE(req.header("content-type").starts_with("multipart/form-data")) << req.header("content-type");
  const auto fields = postern::testing::parse_form(req.header("content-type"), req.body);
  std::vector<std::string> to;
  std::map<std::string, postern::testing::form_field> by_name;
  for (const auto& f : fields) {
    if (f.name == "to")
      to.push_back(f.value);
    else
      by_name[f.name] = f;
  }
  EXPECT_EQ(to, (std::vector<std::string>{"ann@example.com", "bob@example.com"}));
  ASSERT_TRUE(by_name.count("message"));
  EXPECT_EQ(by_name["message"].value, raw) << "the message goes as spooled, byte for byte";
  EXPECT_FALSE(by_name["message"].filename.empty()) << "Mailgun wants the message as a file upload";
  EXPECT_EQ(by_name["o:testmode"].value, "yes");
}

TEST_F(mailgun_test, without_testmode_no_testmode_field_is_sent) {
  test_http_server server([](const http_exchange&) { return http_answer{200, R"({"id": "<x@y>"})", {}}; });
  auto t = make(against(server));
  run(*t, request({"ann@example.com"}));
  ASSERT_EQ(server.requests().size(), 1u);
  for (const auto& f :
       postern::testing::parse_form(server.requests()[0].header("content-type"), server.requests()[0].body))
    EXPECT_NE(f.name, "o:testmode");
}

TEST_F(mailgun_test, deliver_returns_before_mailgun_answers) {
  test_http_server server([](const http_exchange&) { return http_answer{200, R"({"id": "<x@y>"})", {}, 0ms, 1500ms}; });
  auto t = make(against(server));
  std::promise<std::vector<postern::recipient_result>> promise;
  const auto started = std::chrono::steady_clock::now();
  t->deliver(request({"ann@example.com"}), [&](auto results) { promise.set_value(std::move(results)); });
  EXPECT_LT(std::chrono::steady_clock::now() - started, 500ms) << "deliver must not wait for the answer";
  auto future = promise.get_future();
  ASSERT_EQ(future.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(future.get()[0].reply.code, 250);
}

TEST_F(mailgun_test, a_server_that_does_not_answer_times_out_as_a_temporary_failure) {
  test_http_server server([](const http_exchange&) { return http_answer{200, "", {}, 10s}; });
  auto t = make(against(server, {{"timeout", std::string("1s")}}));
  const auto started = std::chrono::steady_clock::now();
  auto results = run(*t, request({"ann@example.com"}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 451);
  EXPECT_EQ(results[0].reply.enhanced, "4.4.1");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST_F(mailgun_test, a_closed_port_is_a_temporary_failure) {
  int port;
  {
    test_http_server closed([](const http_exchange&) { return http_answer{}; });
    port = closed.port();
  }
  auto t = make({{"domain", std::string("mg.example.com")},
                 {"base_url", "http://127.0.0.1:" + std::to_string(port)},
                 {"api_key", std::string(key)}});
  auto results = run(*t, request({"ann@example.com"}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 451) << results[0].reply.text;
  EXPECT_EQ(results[0].reply.enhanced, "4.4.1");
  EXPECT_NE(results[0].reply.text.find("cannot connect to Mailgun"), std::string::npos) << results[0].reply.text;
}

TEST_F(mailgun_test, retry_after_reaches_the_engine) {
  test_http_server server([](const http_exchange&) {
    return http_answer{429, R"({"message": "slow down"})", {{"Retry-After", "42"}}};
  });
  auto t = make(against(server));
  auto results = run(*t, request({"ann@example.com", "bob@example.com"}));
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.reply.code, 451);
    EXPECT_EQ(r.retry_after, 42s);
  }
}

TEST_F(mailgun_test, at_most_max_in_flight_requests_run_and_connections_are_reused) {
  test_http_server server([](const http_exchange&) { return http_answer{200, R"({"id": "<x@y>"})", {}, 0ms, 200ms}; });
  auto t = make(against(server, {{"max_in_flight", std::int64_t{2}}}));
  std::vector<std::future<std::vector<postern::recipient_result>>> futures;
  for (int i = 0; i < 6; ++i) {
    auto promise = std::make_shared<std::promise<std::vector<postern::recipient_result>>>();
    futures.push_back(promise->get_future());
    t->deliver(request({"r" + std::to_string(i) + "@example.com"}),
               [promise](auto results) { promise->set_value(std::move(results)); });
  }
  for (auto& f : futures) {
    ASSERT_EQ(f.wait_for(20s), std::future_status::ready);
    EXPECT_EQ(f.get()[0].reply.code, 250);
  }
  EXPECT_EQ(server.requests().size(), 6u);
  EXPECT_LE(server.max_concurrent(), 2);
  EXPECT_LE(server.connections(), 2) << "six requests on at most two kept-alive connections";

  // One after the other: the same connection serves them all.
  const int before = server.connections();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(run(*t, request({"again@example.com"}))[0].reply.code, 250);
  EXPECT_EQ(server.connections(), before);
}

TEST_F(mailgun_test, stop_answers_attempts_in_flight_and_later_ones_at_once) {
  test_http_server server([](const http_exchange&) { return http_answer{200, "", {}, 30s}; });
  auto t = make(against(server));
  auto promise = std::make_shared<std::promise<std::vector<postern::recipient_result>>>();
  auto calls = std::make_shared<std::atomic<int>>(0);
  t->deliver(request({"ann@example.com"}), [promise, calls](auto results) {
    if (++*calls == 1) promise->set_value(std::move(results));
  });
  ASSERT_TRUE(server.wait_for_requests(1));
  const auto started = std::chrono::steady_clock::now();
  t->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  auto future = promise->get_future();
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  const auto results = future.get();
  EXPECT_EQ(results[0].reply.code, 451);
  EXPECT_EQ(results[0].reply.enhanced, "4.3.2");

  auto later = run(*t, request({"bob@example.com"}), 5s);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].reply.code, 451);
  EXPECT_EQ(calls->load(), 1);
}

TEST_F(mailgun_test, an_unconfigured_transport_defers_without_sending) {
  ::unsetenv("MAILGUN_API_KEY");
  auto t = make({{"domain", std::string("mg.example.com")}});
  auto results = run(*t, request({"ann@example.com"}), 5s);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 451);
  EXPECT_NE(results[0].reply.text.find("no API key"), std::string::npos) << results[0].reply.text;
}

}  // namespace
}  // namespace postern::transports
