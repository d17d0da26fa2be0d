// The webhook dispatcher against a real spool and state store, with a fake poster. Time is
// driven by hand through run_once(now); the dispatcher's thread is never started.
#include "webhooks/dispatcher.hpp"

#include "spool/queue_id.hpp"
#include "test_support.hpp"

#include <boost/json/parse.hpp>

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include <deque>

namespace postern::webhooks {
namespace {

using namespace std::chrono_literals;
using postern::testing::temp_dir;
namespace json = boost::json;
using time_point = std::chrono::system_clock::time_point;

/// Records every POST and answers the statuses it was given, in order (then 200).
struct fake_poster {
  struct call {
    std::string url;
    std::string body;
  };
  std::vector<call> calls;
  std::deque<long> statuses;
  std::mutex mutex;  // the dispatcher posts from several lanes at once
  std::function<void(const std::string& url)> before;  // runs outside the lock, if set

  poster fn() {
    return [this](const std::string& url, const std::string& body) {
      if (before) before(url);
      std::lock_guard lock(mutex);
      calls.push_back({url, body});
      long status = 200;
      if (!statuses.empty()) {
        status = statuses.front();
        statuses.pop_front();
      }
      return post_result{status, "HTTP " + std::to_string(status)};
    };
  }
};

/// A spool and a state store in one temp dir, reopenable.
class dispatcher_test : public ::testing::Test {
 protected:
  dispatcher_test() : spool_({dir_ / "spool"}) { open_store(); }

  void open_store() {
    dispatcher_.reset();
    store_.reset();
    store_ = std::make_unique<store::state_store>(dir_ / "state" / "state.db");
  }

  dispatcher& make_dispatcher(std::vector<std::chrono::seconds> schedule = {30s, 60s, 120s}) {
    dispatcher_options options;
    options.retry_schedule = std::move(schedule);
    dispatcher_ = std::make_unique<dispatcher>(spool_, *store_, options, poster_.fn());
    return *dispatcher_;
  }

  /// Spools a message of `tenant` to `rcpts`; returns its queue id.
  std::string enqueue(const std::string& tenant, std::vector<std::string> rcpts) {
    spool::new_entry e;
    e.msg.queue_id = spool::make_queue_id();
    e.msg.tenant = tenant;
    e.msg.env.mail_from = "shop@tea.example";
    for (std::size_t i = 0; i < rcpts.size(); ++i)
      e.msg.env.recipients.push_back({static_cast<std::uint32_t>(i), rcpts[i], "", postern::notify_failure});
    e.msg.raw = "Subject: test\r\n\r\nhello\r\n";
    e.msg.arrival = std::chrono::system_clock::now();
    e.source = "test";
    auto r = spool_.enqueue_wait(std::move(e));
    EXPECT_TRUE(r.ok) << r.error;
    return r.queue_id;
  }

  /// Records one event of `type` ("delivered", "failed", "dsn", ...) in the spool's log.
  void record(const std::string& queue_id, const std::string& rcpt, const std::string& type,
              postern::smtp_reply reply = {250, "2.0.0", "ok"}) {
    spool::attempt_record r;
    r.events.push_back({std::chrono::system_clock::now(), queue_id, rcpt, type, "smtp", std::move(reply)});
    ASSERT_EQ(spool_.record_wait(std::move(r)), "");
  }

  /// The spool's "webhook" events of a message (the dispatcher records them without waiting).
  std::vector<spool::event_record> webhook_events(const std::string& queue_id) {
    spool_.wait_idle();
    std::vector<spool::event_record> out;
    for (auto& e : spool_.events(queue_id)) {
      if (e.type == "webhook") out.push_back(std::move(e));
    }
    return out;
  }

  static json::object body_of(const fake_poster::call& c) { return json::parse(c.body).as_object(); }
  static json::object event_of(const fake_poster::call& c) { return body_of(c).at("event-data").as_object(); }
  static std::string str(const json::value& v) { return std::string(v.as_string()); }

  temp_dir dir_;
  spool::spool spool_;
  std::unique_ptr<store::state_store> store_;
  fake_poster poster_;
  std::unique_ptr<dispatcher> dispatcher_;
};

TEST_F(dispatcher_test, posts_only_the_event_types_a_tenant_asked_for) {
  store_->set_webhooks("shop", {{"delivered", "https://shop.example/delivered"},
                                {"bounced", "https://shop.example/bounced"}});
  const auto shop = enqueue("shop", {"ann@x.example", "bob@y.example"});
  const auto other = enqueue("bakery", {"cy@z.example"});
  record(shop, "ann@x.example", "delivered");
  record(shop, "bob@y.example", "deferred", {451, "4.4.1", "try later"});  // no webhook for deferred
  record(shop, "bob@y.example", "failed", {550, "5.1.1", "no such user"});  // nor for failed
  record(shop, "bob@y.example", "dsn", {550, "5.1.1", "no such user"});     // sent as "bounced"
  record(other, "cy@z.example", "delivered");                               // the bakery set none

  auto& d = make_dispatcher();
  const auto t0 = std::chrono::system_clock::now();
  d.run_once(t0);

  ASSERT_EQ(poster_.calls.size(), 2u);
  EXPECT_EQ(poster_.calls[0].url, "https://shop.example/delivered");
  const auto delivered = event_of(poster_.calls[0]);
  EXPECT_EQ(str(delivered.at("event")), "delivered");
  EXPECT_EQ(str(delivered.at("recipient")), "ann@x.example");
  EXPECT_EQ(str(delivered.at("message").at("queue-id")), shop);
  EXPECT_EQ(delivered.at("delivery-status").at("code").to_number<int>(), 250);
  EXPECT_EQ(str(delivered.at("delivery-status").at("transport")), "smtp");

  EXPECT_EQ(poster_.calls[1].url, "https://shop.example/bounced");
  const auto bounced = event_of(poster_.calls[1]);
  EXPECT_EQ(str(bounced.at("event")), "bounced");
  EXPECT_EQ(str(bounced.at("recipient")), "bob@y.example");
  EXPECT_EQ(str(bounced.at("delivery-status").at("enhanced-code")), "5.1.1");
  EXPECT_EQ(str(bounced.at("delivery-status").at("message")), "no such user");
  EXPECT_NE(str(delivered.at("id")), str(bounced.at("id")));

  EXPECT_TRUE(webhook_events(other).empty());
}

TEST_F(dispatcher_test, a_round_sends_what_it_generated_by_its_own_clock) {
  // The round's `now` decides what is due, also for deliveries it has just made: with the wall
  // clock behind them they would wait for a later round (a poll interval in production).
  store_->set_webhooks("shop", {{"delivered", "https://shop.example/hook"}});
  const auto id = enqueue("shop", {"ann@x.example"});
  record(id, "ann@x.example", "delivered");
  make_dispatcher().run_once(std::chrono::system_clock::now() - 1min);
  EXPECT_EQ(poster_.calls.size(), 1u);
}

TEST_F(dispatcher_test, the_signature_verifies_under_the_tenants_key) {
  const auto key = store_->set_webhooks("shop", {{"delivered", "https://shop.example/hook"}});
  const auto id = enqueue("shop", {"ann@x.example", "bob@y.example"});
  record(id, "ann@x.example", "delivered");
  record(id, "bob@y.example", "delivered");
  make_dispatcher().run_once(std::chrono::system_clock::now());

  ASSERT_EQ(poster_.calls.size(), 2u);
  std::vector<std::string> tokens;
  for (const auto& call : poster_.calls) {
    const auto sig = body_of(call).at("signature").as_object();
    const auto timestamp = str(sig.at("timestamp"));
    const auto token = str(sig.at("token"));
    EXPECT_EQ(str(sig.at("signature")), signature(key, timestamp, token));
    EXPECT_EQ(str(sig.at("signature")).size(), 64u);
    // A receiver that checks freshness: the timestamp is now, in Unix seconds.
    const auto seconds = std::stoll(timestamp);
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    EXPECT_LE(std::abs(now - seconds), 60);
    // Another key, or another token, does not verify.
    EXPECT_NE(str(sig.at("signature")), signature(key + "x", timestamp, token));
    EXPECT_NE(str(sig.at("signature")), signature(key, timestamp, token + "0"));
    tokens.push_back(token);
  }
  EXPECT_NE(tokens[0], tokens[1]);  // a fresh token per request, against replays
}

TEST(signature, is_the_hex_hmac_sha256_of_timestamp_and_token) {
  // RFC 4231 test case 2: HMAC-SHA256 of "what do ya want for nothing?" under "Jefe",
  // the message split between timestamp and token.
  EXPECT_EQ(signature("Jefe", "what do ya want ", "for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_F(dispatcher_test, a_failure_is_retried_on_the_schedule_and_a_success_ends_it) {
  store_->set_webhooks("shop", {{"failed", "https://shop.example/hook"}});
  const auto id = enqueue("shop", {"ann@x.example"});
  record(id, "ann@x.example", "failed", {550, "5.1.1", "no such user"});
  poster_.statuses = {500, 503, 204};
  auto& d = make_dispatcher({30s, 60s, 120s});

  const auto t0 = std::chrono::system_clock::now();
  d.run_once(t0);
  ASSERT_EQ(poster_.calls.size(), 1u);
  d.run_once(t0 + 29s);  // not before the first step of the schedule
  EXPECT_EQ(poster_.calls.size(), 1u);
  d.run_once(t0 + 30s);
  ASSERT_EQ(poster_.calls.size(), 2u);
  d.run_once(t0 + 30s + 59s);  // the second step counts from the second attempt
  EXPECT_EQ(poster_.calls.size(), 2u);
  d.run_once(t0 + 30s + 60s);
  ASSERT_EQ(poster_.calls.size(), 3u);  // 204: done
  d.run_once(t0 + 1h);
  d.run_once(t0 + 24h);
  EXPECT_EQ(poster_.calls.size(), 3u);
  // The same event each time.
  EXPECT_EQ(event_of(poster_.calls[0]), event_of(poster_.calls[2]));

  const auto events = webhook_events(id);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].reply.code, 451);
  EXPECT_EQ(events[0].reply.enhanced, "4.4.0");
  EXPECT_EQ(events[0].reply.text, "failed to https://shop.example/hook: HTTP 500");
  EXPECT_EQ(events[0].recipient, "ann@x.example");
  EXPECT_EQ(events[1].reply.code, 451);
  EXPECT_EQ(events[1].reply.text, "failed to https://shop.example/hook: HTTP 503");
  EXPECT_EQ(events[2].reply.code, 250);
  EXPECT_EQ(events[2].reply.text, "failed to https://shop.example/hook: HTTP 204");
}

TEST_F(dispatcher_test, gives_up_when_the_schedule_is_exhausted) {
  store_->set_webhooks("shop", {{"delivered", "https://shop.example/hook"}});
  const auto id = enqueue("shop", {"ann@x.example"});
  record(id, "ann@x.example", "delivered");
  poster_.statuses = {500, 500, 500, 500, 500, 500};
  auto& d = make_dispatcher({10s, 20s});

  const auto t0 = std::chrono::system_clock::now();
  d.run_once(t0);
  d.run_once(t0 + 10s);
  d.run_once(t0 + 30s);  // the third attempt, after both retries
  ASSERT_EQ(poster_.calls.size(), 3u);
  for (const auto later : {t0 + 1min, t0 + 1h, t0 + 24h * 30}) d.run_once(later);
  EXPECT_EQ(poster_.calls.size(), 3u);

  const auto events = webhook_events(id);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].reply.code, 451);
  EXPECT_EQ(events[1].reply.code, 451);
  EXPECT_EQ(events[2].reply.code, 551);
  EXPECT_EQ(events[2].reply.enhanced, "5.4.0");
  EXPECT_EQ(events[2].reply.text, "delivered to https://shop.example/hook: gave up: HTTP 500");
}

TEST_F(dispatcher_test, no_answer_is_a_failure_too) {
  store_->set_webhooks("shop", {{"delivered", "https://shop.example/hook"}});
  const auto id = enqueue("shop", {"ann@x.example"});
  record(id, "ann@x.example", "delivered");
  poster_.statuses = {0, 302, 200};  // no connection; a redirect is not a success either
  auto& d = make_dispatcher({5s, 5s});
  const auto t0 = std::chrono::system_clock::now();
  d.run_once(t0);
  d.run_once(t0 + 5s);
  d.run_once(t0 + 10s);
  ASSERT_EQ(poster_.calls.size(), 3u);
  const auto events = webhook_events(id);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].reply.code, 451);
  EXPECT_EQ(events[1].reply.code, 451);
  EXPECT_EQ(events[2].reply.code, 250);
}

TEST_F(dispatcher_test, an_event_is_posted_once_across_rounds_and_reopening) {
  store_->set_webhooks("shop", {{"delivered", "https://shop.example/hook"}});
  const auto id = enqueue("shop", {"ann@x.example", "bob@y.example", "cy@z.example"});
  record(id, "ann@x.example", "delivered");
  auto t = std::chrono::system_clock::now();
  {
    auto& d = make_dispatcher();
    d.run_once(t);
    d.run_once(t);
    d.run_once(t += 1h);
  }
  ASSERT_EQ(poster_.calls.size(), 1u);

  // A new event: only it is posted.
  record(id, "bob@y.example", "delivered");
  make_dispatcher().run_once(t += 1s);
  ASSERT_EQ(poster_.calls.size(), 2u);
  EXPECT_EQ(str(event_of(poster_.calls[1]).at("recipient")), "bob@y.example");

  // The cursor is in the store: a restart does not post old events again.
  spool_.wait_idle();
  open_store();
  EXPECT_GT(store_->webhook_cursor(), 0);
  record(id, "cy@z.example", "delivered");
  auto& d = make_dispatcher();
  d.run_once(t += 1s);
  d.run_once(t += 1h);
  ASSERT_EQ(poster_.calls.size(), 3u);
  EXPECT_EQ(str(event_of(poster_.calls[2]).at("recipient")), "cy@z.example");
  EXPECT_EQ(webhook_events(id).size(), 3u);
}

TEST_F(dispatcher_test, a_pending_retry_survives_reopening) {
  store_->set_webhooks("shop", {{"delivered", "https://shop.example/hook"}});
  const auto id = enqueue("shop", {"ann@x.example"});
  record(id, "ann@x.example", "delivered");
  poster_.statuses = {500};
  const auto t0 = std::chrono::system_clock::now();
  make_dispatcher({30s}).run_once(t0);
  ASSERT_EQ(poster_.calls.size(), 1u);

  spool_.wait_idle();
  open_store();
  auto& d = make_dispatcher({30s});
  d.run_once(t0 + 29s);
  EXPECT_EQ(poster_.calls.size(), 1u);
  d.run_once(t0 + 30s);
  ASSERT_EQ(poster_.calls.size(), 2u);
  EXPECT_EQ(event_of(poster_.calls[0]), event_of(poster_.calls[1]));
  d.run_once(t0 + 1h);
  EXPECT_EQ(poster_.calls.size(), 2u);
}

TEST_F(dispatcher_test, webhook_events_themselves_are_not_posted) {
  // The attempts the dispatcher writes to the spool's log are events past the cursor too.
  store_->set_webhooks("shop", {{"delivered", "https://shop.example/hook"},
                                {"failed", "https://shop.example/hook"},
                                {"deferred", "https://shop.example/hook"},
                                {"bounced", "https://shop.example/hook"}});
  const auto id = enqueue("shop", {"ann@x.example"});
  record(id, "ann@x.example", "delivered");
  auto& d = make_dispatcher();
  auto t = std::chrono::system_clock::now();
  for (int i = 0; i < 5; ++i) {
    d.run_once(t += 1h);
    spool_.wait_idle();
  }
  EXPECT_EQ(poster_.calls.size(), 1u);
}

TEST_F(dispatcher_test, a_tenant_whose_url_hangs_does_not_hold_up_another) {
  store_->set_webhooks("slow", {{"delivered", "https://slow.example/hook"}});
  store_->set_webhooks("quick", {{"delivered", "https://quick.example/hook"}});
  const auto slow_id = enqueue("slow", {"a@example.com"});
  const auto quick_id = enqueue("quick", {"b@example.com"});
  record(slow_id, "a@example.com", "delivered");
  record(quick_id, "b@example.com", "delivered");
  // The slow tenant's POST waits until the quick tenant's has been made: with one lane for
  // everyone it would wait in vain (and give up after its bound).
  std::mutex m;
  std::condition_variable cv;
  bool quick_posted = false, quick_came_first = false;
  poster_.before = [&](const std::string& url) {
    std::unique_lock lock(m);
    if (url.find("quick") != std::string::npos) {
      quick_posted = true;
      cv.notify_all();
    } else {
      quick_came_first = cv.wait_for(lock, 10s, [&] { return quick_posted; });
    }
  };
  make_dispatcher().run_once(std::chrono::system_clock::now());
  EXPECT_TRUE(quick_came_first);
  EXPECT_EQ(poster_.calls.size(), 2u);
}

}  // namespace
}  // namespace postern::webhooks
