#include "delivery/engine.hpp"

#include "spool/queue_id.hpp"
#include "test_support.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <mutex>
#include <future>
#include <thread>

namespace postern::delivery {
namespace {

using namespace std::chrono_literals;
using postern::testing::temp_dir;

/// Answers by local part, like the scripted test plugin: fail… 550, defer… 451, else 250.
class fake_transport final : public postern::transport {
 public:
  std::function<void(postern::delivery_request, postern::delivery_callback)> behaviour;
  std::atomic<int> calls{0};

  postern::probe_result probe() override { return {true, "fake"}; }
  void deliver(postern::delivery_request request, postern::delivery_callback done) override {
    ++calls;
    if (behaviour) return behaviour(std::move(request), std::move(done));
    std::vector<postern::recipient_result> out;
    for (const auto& r : request.recipients) {
      if (r.address.starts_with("fail")) out.push_back({r.index, {550, "5.1.1", "no such user"}, ""});
      else if (r.address.starts_with("defer")) out.push_back({r.index, {451, "4.4.1", "try later"}, ""});
      else out.push_back({r.index, {250, "2.0.0", "ok"}, "remote-" + request.msg->queue_id});
    }
    done(std::move(out));
  }
};

engine_options options(std::vector<std::chrono::milliseconds> schedule, double jitter,
                       std::chrono::milliseconds max_age = 120h) {
  engine_options o;
  o.retry_schedule = std::move(schedule);
  o.jitter = jitter;
  o.max_age = max_age;
  return o;
}

class engine_test : public ::testing::Test {
 protected:
  void start(engine_options options = {}, bool with_transport = true) {
    options.hostname = "gw.example";
    if (options.retry_schedule.empty()) options.retry_schedule = {1min};
    options.poll_interval = 50ms;
    std::vector<plugin_host::transport_entry> entries;
    if (with_transport) {
      plugin_host::transport_entry e;
      e.name = "fake";
      e.impl = transport_;
      e.probe = {true, "fake"};
      entries.push_back(std::move(e));
    }
    transports_ = std::make_unique<plugin_host::transport_set>(std::move(entries));
    engine_ = std::make_unique<engine>(io_, spool_, *transports_, chain_, options);
    spool_.on_enqueued([this](spool::spool::stored_messages m) { engine_->offer(std::move(m)); });
    engine_->start();
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    spool_.on_enqueued(nullptr);
    if (engine_) {
      std::promise<void> drained;
      engine_->shutdown([&] { drained.set_value(); });
      drained.get_future().wait_for(10s);
    }
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    if (engine_) engine_->stop();
  }

  std::string enqueue(std::vector<std::string> rcpts, std::string from = "shop@example.com",
                      std::vector<unsigned> notify = {}, std::chrono::system_clock::time_point arrival = {}) {
    spool::new_entry e;
    e.msg.queue_id = spool::make_queue_id();
    e.msg.tenant = "shop";
    e.msg.env.mail_from = std::move(from);
    for (std::size_t i = 0; i < rcpts.size(); ++i)
      e.msg.env.recipients.push_back({static_cast<std::uint32_t>(i), rcpts[i], "", i < notify.size() ? notify[i] : 0u});
    e.msg.raw = "Subject: order 42\r\n\r\nthanks\r\n";
    e.msg.arrival = arrival == std::chrono::system_clock::time_point{} ? std::chrono::system_clock::now() : arrival;
    auto r = spool_.enqueue_wait(std::move(e));
    EXPECT_TRUE(r.ok) << r.error;
    return r.queue_id;
  }

  /// A message large enough that its body goes to a segment file in the spool's bodies/.
  std::string enqueue_large(std::string rcpt) {
    spool::new_entry e;
    e.msg.queue_id = spool::make_queue_id();
    e.msg.tenant = "shop";
    e.msg.env.mail_from = "shop@example.com";
    e.msg.env.recipients.push_back({0, std::move(rcpt), "", 0});
    e.msg.raw = "Subject: large\r\n\r\n" + std::string(100000, 'x') + "\r\n";
    e.msg.arrival = std::chrono::system_clock::now();
    auto r = spool_.enqueue_wait(std::move(e));
    EXPECT_TRUE(r.ok) << r.error;
    // The spool answers a batch's waiters before it tells its listener: one more trip through
    // its writer (a hold of nothing) makes sure that was done before a test attaches the
    // engine, which would otherwise get this message fresh, from memory, and deliver it.
    EXPECT_EQ(spool_.hold("NOSUCHMESSAGE000"), 0u);
    return r.queue_id;
  }

  /// Waits (bounded) until `done` holds for the message.
  spool::queued_message wait_settled(const std::string& id, std::function<bool(const spool::queued_message&)> done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      auto m = spool_.load(id, false);  // states only: a test may have taken the content away
      if (m && done(*m)) return *m;
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "message " << id << " did not reach the expected state in time";
        return m ? *m : spool::queued_message{};
      }
      std::this_thread::sleep_for(10ms);
    }
  }

  static bool attempted(const spool::queued_message& m) {
    for (const auto& r : m.recipients) {
      if (r.attempts == 0) return false;
    }
    return true;
  }

  std::optional<spool::queued_message> dsn_of(const std::string& id) {
    for (const auto& e : spool_.events(id)) {
      if (e.type == "dsn") return spool_.load(e.reply.text.substr(e.reply.text.rfind(' ') + 1));
    }
    return std::nullopt;
  }

  temp_dir dir_;
  spool::spool spool_{{dir_.path()}};
  policies::chain chain_;
  std::shared_ptr<fake_transport> transport_ = std::make_shared<fake_transport>();
  std::unique_ptr<plugin_host::transport_set> transports_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{io_.get_executor()};
  std::unique_ptr<engine> engine_;
  std::thread thread_;
};

TEST_F(engine_test, delivers_and_records_the_outcome) {
  start();
  const auto id = enqueue({"ann@example.com", "bob@example.com"});
  auto m = wait_settled(id, attempted);
  for (const auto& r : m.recipients) {
    EXPECT_EQ(r.state, spool::recipient_state::delivered);
    EXPECT_EQ(r.transport, "fake");
    EXPECT_EQ(r.remote_id, "remote-" + id);
    EXPECT_EQ(r.attempts, 1u);
  }
  EXPECT_EQ(spool_.events(id).back().type, "delivered");
  EXPECT_FALSE(dsn_of(id)) << "no report for a success nobody asked about";
  EXPECT_EQ(transport_->calls.load(), 1) << "both recipients in one attempt";
}

TEST_F(engine_test, a_temporary_failure_is_deferred_with_backoff) {
  start(options({10min}, 0.2));
  const auto before = std::chrono::system_clock::now();
  const auto id = enqueue({"defer@example.com"});
  auto m = wait_settled(id, attempted);
  const auto& r = m.recipients[0];
  EXPECT_EQ(r.state, spool::recipient_state::deferred);
  EXPECT_EQ(r.last_reply.code, 451);
  EXPECT_GE(r.next_attempt, before + 8min);
  EXPECT_LE(r.next_attempt, std::chrono::system_clock::now() + 12min);
  EXPECT_FALSE(dsn_of(id));
}

TEST_F(engine_test, a_permanent_failure_sends_one_dsn_to_the_sender) {
  start();
  const auto id = enqueue({"fail1@example.com", "ok@example.com", "fail2@example.com"});
  auto m = wait_settled(id, attempted);
  EXPECT_EQ(m.recipients[0].state, spool::recipient_state::failed);
  EXPECT_EQ(m.recipients[1].state, spool::recipient_state::delivered);
  EXPECT_EQ(m.recipients[2].state, spool::recipient_state::failed);
  auto dsn = dsn_of(id);
  ASSERT_TRUE(dsn);
  EXPECT_EQ(dsn->msg->env.mail_from, "") << "reports go out with the null sender";
  ASSERT_EQ(dsn->recipients.size(), 1u);
  EXPECT_EQ(dsn->recipients[0].rcpt.address, "shop@example.com");
  EXPECT_EQ(dsn->recipients[0].rcpt.notify, postern::notify_never);
  EXPECT_EQ(dsn->source, "dsn");
  auto delivered = wait_settled(dsn->msg->queue_id, attempted);
  EXPECT_EQ(delivered.recipients[0].state, spool::recipient_state::delivered);
}

TEST_F(engine_test, dsn_content_names_each_failed_recipient) {
  start();
  // Hold the report in the spool so its body can be read before delivery drops it.
  transport_->behaviour = [](postern::delivery_request req, postern::delivery_callback done) {
    std::vector<postern::recipient_result> out;
    for (const auto& r : req.recipients)
      out.push_back({r.index, r.address.starts_with("fail") ? postern::smtp_reply{550, "5.1.1", "no such user"}
                                                             : postern::smtp_reply{451, "4.3.0", "hold"}, ""});
    done(std::move(out));
  };
  const auto id = enqueue({"fail1@example.com", "fail2@example.com"});
  wait_settled(id, attempted);
  auto dsn = dsn_of(id);
  ASSERT_TRUE(dsn);
  const auto& raw = dsn->msg->raw;
  EXPECT_NE(raw.find("Final-Recipient: rfc822; fail1@example.com"), std::string::npos) << raw;
  EXPECT_NE(raw.find("Final-Recipient: rfc822; fail2@example.com"), std::string::npos) << raw;
  EXPECT_NE(raw.find("Status: 5.1.1"), std::string::npos);
  EXPECT_NE(raw.find("Subject: order 42"), std::string::npos) << "the original's headers come back";
}

TEST_F(engine_test, the_null_sender_gets_no_dsn) {
  start();
  const auto id = enqueue({"fail@example.com"}, "");
  auto m = wait_settled(id, attempted);
  EXPECT_EQ(m.recipients[0].state, spool::recipient_state::failed);
  EXPECT_FALSE(dsn_of(id));
}

TEST_F(engine_test, notify_never_suppresses_and_notify_success_asks_for_a_report) {
  start();
  const auto never = enqueue({"fail@example.com"}, "shop@example.com", {postern::notify_never});
  // The sender's address makes the fake defer the report, so its body stays readable.
  const auto success = enqueue({"ok@example.com"}, "defer-shop@example.com", {postern::notify_success});
  wait_settled(never, attempted);
  wait_settled(success, attempted);
  EXPECT_FALSE(dsn_of(never));
  auto report = dsn_of(success);
  ASSERT_TRUE(report);
  EXPECT_NE(report->msg->raw.find("Action: delivered"), std::string::npos);
}

TEST_F(engine_test, expiry_turns_a_temporary_failure_into_a_failure_with_report) {
  start(options({1min}, 0.2, 1h));
  const auto id = enqueue({"defer@example.com"}, "shop@example.com", {}, std::chrono::system_clock::now() - 2h);
  auto m = wait_settled(id, attempted);
  EXPECT_EQ(m.recipients[0].state, spool::recipient_state::failed);
  EXPECT_EQ(m.recipients[0].last_reply.enhanced, "4.4.7");
  EXPECT_NE(m.recipients[0].last_reply.text.find("451 4.4.1 try later"), std::string::npos);
  ASSERT_TRUE(dsn_of(id));
}

TEST_F(engine_test, the_last_retry_happens_at_expiry_not_after) {
  start(options({10h}, 0.0, 1h));
  const auto arrival = std::chrono::system_clock::now();
  const auto id = enqueue({"defer@example.com"}, "shop@example.com", {}, arrival);
  auto m = wait_settled(id, attempted);
  EXPECT_EQ(m.recipients[0].state, spool::recipient_state::deferred);
  const auto ms = [](auto t) { return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()); };
  EXPECT_EQ(ms(m.recipients[0].next_attempt), ms(arrival + 1h));
}

TEST_F(engine_test, missing_results_exceptions_and_bad_codes_are_temporary) {
  start();
  transport_->behaviour = [](postern::delivery_request req, postern::delivery_callback done) {
    const auto& first = req.recipients.front().address;
    if (first.starts_with("throw")) throw std::runtime_error("boom");
    std::vector<postern::recipient_result> out;
    if (first.starts_with("odd")) out.push_back({req.recipients.front().index, {999, "", "what"}, ""});
    done(std::move(out));  // "missing…": no result at all
  };
  const auto missing = enqueue({"missing@example.com"});
  const auto thrown = enqueue({"throw@example.com"});
  const auto odd = enqueue({"odd@example.com"});
  for (const auto& id : {missing, thrown, odd}) {
    auto m = wait_settled(id, attempted);
    EXPECT_EQ(m.recipients[0].state, spool::recipient_state::deferred) << id;
    EXPECT_EQ(m.recipients[0].last_reply.code, 451) << id;
  }
  EXPECT_NE(spool_.load(odd)->recipients[0].last_reply.text.find("invalid reply"), std::string::npos);
}

TEST_F(engine_test, without_a_transport_mail_waits) {
  start({}, false);
  const auto id = enqueue({"ann@example.com"});
  auto m = wait_settled(id, attempted);
  EXPECT_EQ(m.recipients[0].state, spool::recipient_state::deferred);
  EXPECT_EQ(m.recipients[0].last_reply.enhanced, "4.3.5");
}

TEST_F(engine_test, an_asynchronous_transport_may_answer_from_another_thread) {
  std::vector<std::thread> threads;
  std::mutex mutex;
  transport_->behaviour = [&](postern::delivery_request req, postern::delivery_callback done) {
    std::lock_guard lock(mutex);
    threads.emplace_back([req = std::move(req), done = std::move(done)] {
      std::this_thread::sleep_for(20ms);
      done({{req.recipients[0].index, {250, "2.0.0", "later"}, ""}});
    });
  };
  start();
  const auto id = enqueue({"ann@example.com"});
  auto m = wait_settled(id, attempted);
  EXPECT_EQ(m.recipients[0].state, spool::recipient_state::delivered);
  std::lock_guard lock(mutex);
  for (auto& t : threads) t.join();
}

TEST_F(engine_test, mail_beyond_the_parallel_limit_waits_and_goes_out_exactly_once) {
  engine_options o = options({1min}, 0.2);
  o.max_parallel = 2;
  std::mutex mutex;
  std::map<std::string, int> attempts;
  transport_->behaviour = [&](postern::delivery_request req, postern::delivery_callback done) {
    {
      std::lock_guard lock(mutex);
      ++attempts[req.msg->queue_id];
    }
    std::this_thread::sleep_for(2ms);  // slow enough that offers pile up behind the limit
    done({{req.recipients[0].index, {250, "2.0.0", "ok"}, ""}});
  };
  start(o);
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(enqueue({"r" + std::to_string(i) + "@example.com"}));
  for (const auto& id : ids) wait_settled(id, attempted);
  std::lock_guard lock(mutex);
  EXPECT_EQ(attempts.size(), ids.size());
  for (const auto& [id, n] : attempts) EXPECT_EQ(n, 1) << id << " was delivered " << n << " times";
}

TEST_F(engine_test, content_that_cannot_be_read_now_is_a_temporary_failure_on_the_retry_schedule) {
  const auto id = enqueue_large("ann@example.com");
  // A directory where the segment was: it opens, and every read of it fails (EISDIR), as an
  // I/O error would.
  for (const auto& f : std::filesystem::directory_iterator(dir_ / "bodies")) {
    if (f.path().extension() != ".seg") continue;
    std::filesystem::remove(f.path());
    std::filesystem::create_directory(f.path());
  }
  start(options({10min}, 0.0));
  auto m = wait_settled(id, attempted);
  EXPECT_FALSE(m.held);
  EXPECT_EQ(m.recipients[0].state, spool::recipient_state::deferred);
  EXPECT_EQ(m.recipients[0].last_reply.enhanced, "4.3.0");
  EXPECT_NE(m.recipients[0].last_reply.text.find("cannot read the message from the spool"), std::string::npos)
      << m.recipients[0].last_reply.text;
  EXPECT_GT(m.recipients[0].next_attempt, std::chrono::system_clock::now() + 5min) << "on the retry schedule";
  EXPECT_EQ(transport_->calls.load(), 0);
}

TEST_F(engine_test, mail_a_limit_holds_back_does_not_keep_other_mail_waiting) {
  engine_options o = options({1min}, 0.2);
  o.max_parallel = 2;
  o.limits.push_back({"", "slow.example", 0, 0.1});  // one now, the next in ten seconds
  start(o);
  std::vector<std::string> slow;
  for (int i = 0; i < 4; ++i) slow.push_back(enqueue({"r" + std::to_string(i) + "@slow.example"}));
  const auto fast = enqueue({"ann@fast.example"});
  // Three slow deliveries wait for tokens, more than max_parallel: the fast one goes at once.
  const auto m = wait_settled(fast, attempted);
  EXPECT_EQ(m.recipients[0].state, spool::recipient_state::delivered);
  int slow_done = 0;
  for (const auto& id : slow) slow_done += spool_.load(id, false)->recipients[0].attempts > 0;
  EXPECT_EQ(slow_done, 1) << "the rate limit still holds the others";
}

TEST_F(engine_test, held_mail_is_not_delivered_until_released) {
  const auto id = enqueue({"ann@example.com"});
  spool_.hold(id);
  start();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(transport_->calls.load(), 0);
  spool_.release(id);
  auto m = wait_settled(id, attempted);
  EXPECT_EQ(m.recipients[0].state, spool::recipient_state::delivered);
}

TEST_F(engine_test, a_message_whose_content_is_gone_is_held_not_retried_or_bounced) {
  const auto id = enqueue_large("ann@example.com");
  for (const auto& f : std::filesystem::directory_iterator(dir_ / "bodies")) std::filesystem::remove(f.path());
  start();
  auto m = wait_settled(id, [](const spool::queued_message& q) { return q.held; });
  EXPECT_TRUE(m.held);
  EXPECT_EQ(m.recipients[0].state, spool::recipient_state::queued);
  EXPECT_EQ(transport_->calls.load(), 0);
  EXPECT_FALSE(dsn_of(id));
}

}  // namespace
}  // namespace postern::delivery
