#include "spool/spool.hpp"

#include "spool/queue_id.hpp"
#include "spool/sqlite.hpp"
#include "telemetry/registry.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace postern::spool {
namespace {

using namespace std::chrono_literals;
using postern::testing::temp_dir;

new_entry make_entry(std::vector<std::string> rcpts, std::string body = "hello") {
  new_entry e;
  e.msg.queue_id = make_queue_id();
  e.msg.tenant = "shop";
  e.msg.stream = postern::mail_stream::marketing;
  e.msg.tags = {"welcome", "spring"};
  e.msg.campaign_id = "c1";
  e.msg.env.mail_from = "sender@example.com";
  e.msg.env.envid = "env-1";
  e.msg.env.ret = postern::dsn_ret::full;
  for (std::size_t i = 0; i < rcpts.size(); ++i)
    e.msg.env.recipients.push_back({static_cast<std::uint32_t>(i), rcpts[i], "rfc822;" + rcpts[i], postern::notify_failure});
  e.msg.raw = "Subject: test\r\n\r\n" + body + "\r\n";
  e.msg.arrival = std::chrono::system_clock::now();
  e.source = "test";
  return e;
}

std::size_t segment_count(const std::filesystem::path& spool_dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(spool_dir / "bodies")) n += e.path().extension() == ".seg";
  return n;
}

/// Stores `n` messages at once (each shaped by `shape`, if given) and records them delivered;
/// their ids, in order.
std::vector<std::string> delivered_messages(spool& s, int n, const std::function<void(new_entry&, int)>& shape = {}) {
  std::atomic<int> remaining{n};
  std::promise<void> all;
  std::vector<std::string> ids(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto e = make_entry({"a@example.com"});
    if (shape) shape(e, i);
    s.enqueue(std::move(e), [&, i](enqueue_result r) {
      ids[static_cast<std::size_t>(i)] = r.queue_id;
      if (--remaining == 0) all.set_value();
    });
  }
  all.get_future().wait();
  const auto now = std::chrono::system_clock::now();
  attempt_record done;
  for (const auto& id : ids) done.updates.push_back({id, 0, recipient_state::delivered, 1, now, {250, "2.0.0", "ok"}, "file", ""});
  EXPECT_EQ(s.record_wait(done), "");
  return ids;
}

TEST(spool, stores_and_loads_a_message_exactly) {
  temp_dir dir;
  spool s({dir.path()});
  auto e = make_entry({"a@example.com", "b@example.com"}, std::string(100000, 'x'));
  const auto expected = e.msg;
  auto r = s.enqueue_wait(std::move(e));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.queue_id, expected.queue_id);

  auto m = s.load(r.queue_id);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->msg->raw, expected.raw);
  EXPECT_EQ(m->msg->tenant, "shop");
  EXPECT_EQ(m->msg->stream, postern::mail_stream::marketing);
  EXPECT_EQ(m->msg->tags, expected.tags);
  EXPECT_EQ(m->msg->campaign_id, "c1");
  EXPECT_EQ(m->msg->env.mail_from, "sender@example.com");
  EXPECT_EQ(m->msg->env.envid, "env-1");
  EXPECT_EQ(m->msg->env.ret, postern::dsn_ret::full);
  EXPECT_EQ(m->source, "test");
  EXPECT_EQ(m->size, expected.raw.size());
  ASSERT_EQ(m->recipients.size(), 2u);
  EXPECT_EQ(m->recipients[1].rcpt.address, "b@example.com");
  EXPECT_EQ(m->recipients[1].rcpt.orcpt, "rfc822;b@example.com");
  EXPECT_EQ(m->recipients[1].rcpt.notify, postern::notify_failure);
  EXPECT_EQ(m->recipients[1].state, recipient_state::queued);
  const auto ms = [](auto t) { return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()); };
  EXPECT_EQ(ms(m->msg->arrival), ms(expected.arrival));

  auto events = s.events(r.queue_id);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, "accepted");
}

TEST(spool, survives_reopening) {
  temp_dir dir;
  std::string id;
  {
    spool s({dir.path()});
    auto r = s.enqueue_wait(make_entry({"a@example.com"}));
    ASSERT_TRUE(r.ok);
    id = r.queue_id;
  }
  spool s({dir.path()});
  ASSERT_TRUE(s.load(id));
  EXPECT_EQ(s.due(std::chrono::system_clock::now() + 1s, 10), std::vector<std::string>{id});
}

TEST(spool, origin_key_makes_a_hand_over_idempotent) {
  temp_dir dir;
  spool s({dir.path()});
  auto first = make_entry({"a@example.com"});
  first.origin_key = "maildrop:123";
  auto second = make_entry({"a@example.com"});
  second.origin_key = "maildrop:123";
  auto r1 = s.enqueue_wait(std::move(first));
  auto r2 = s.enqueue_wait(std::move(second));
  ASSERT_TRUE(r1.ok && r2.ok);
  EXPECT_TRUE(r2.duplicate);
  EXPECT_EQ(r1.queue_id, r2.queue_id);
  EXPECT_EQ(s.pending().size(), 1u);
}

TEST(spool, concurrent_submissions_share_commits) {
  temp_dir dir;
  telemetry::registry metrics;
  spool s({dir.path(), 1024, &metrics});
  constexpr int n = 1000;
  std::atomic<int> ok{0};
  std::promise<void> all_done;
  std::atomic<int> remaining{n};
  for (int i = 0; i < n; ++i) {
    s.enqueue(make_entry({"a@example.com"}), [&](enqueue_result r) {
      if (r.ok) ++ok;
      if (--remaining == 0) all_done.set_value();
    });
  }
  all_done.get_future().wait();
  EXPECT_EQ(ok.load(), n);
  const double commits = metrics.counter("postern_spool_commits_total");
  // Group commit: a thousand submissions in flight cost far fewer than a thousand fsyncs.
  EXPECT_LT(commits, n / 10.0) << commits << " commits for " << n << " messages";
  EXPECT_EQ(s.stats().queued, static_cast<std::uint64_t>(n));
}

TEST(spool, records_outcomes_and_drops_the_body_when_done) {
  temp_dir dir;
  spool s({dir.path()});
  auto r = s.enqueue_wait(make_entry({"a@example.com", "b@example.com"}));
  const auto now = std::chrono::system_clock::now();
  attempt_record first;
  first.updates.push_back({r.queue_id, 0, recipient_state::delivered, 1, now, {250, "2.0.0", "ok"}, "file", "x1"});
  first.updates.push_back({r.queue_id, 1, recipient_state::deferred, 1, now + 1h, {451, "4.4.1", "later"}, "file", ""});
  first.events.push_back({now, r.queue_id, "a@example.com", "delivered", "file", {250, "2.0.0", "ok"}});
  ASSERT_EQ(s.record_wait(first), "");

  auto m = s.load(r.queue_id);
  EXPECT_EQ(m->recipients[0].state, recipient_state::delivered);
  EXPECT_EQ(m->recipients[0].remote_id, "x1");
  EXPECT_EQ(m->recipients[1].state, recipient_state::deferred);
  EXPECT_EQ(m->recipients[1].last_reply.enhanced, "4.4.1");
  EXPECT_FALSE(m->msg->raw.empty());
  EXPECT_TRUE(s.due(now + 1min, 10).empty());
  EXPECT_EQ(s.due(now + 2h, 10).size(), 1u);
  const auto midway = s.stats();
  EXPECT_EQ(midway.messages_pending, 1u);
  EXPECT_EQ(midway.queued, 0u);
  EXPECT_EQ(midway.deferred, 1u);

  attempt_record second;
  second.updates.push_back({r.queue_id, 1, recipient_state::failed, 2, now, {550, "5.1.1", "no"}, "file", ""});
  ASSERT_EQ(s.record_wait(second), "");
  m = s.load(r.queue_id);
  EXPECT_TRUE(m->msg->raw.empty()) << "the body goes once every recipient is final";
  EXPECT_TRUE(s.pending().empty());
  EXPECT_TRUE(s.due(now + 10h, 10).empty());
  const auto after = s.stats();
  EXPECT_EQ(after.messages_pending + after.queued + after.deferred, 0u);
}

TEST(spool, keeps_finished_content_for_keep_content_then_purges_it) {
  temp_dir dir;
  spool s({dir.path(), 1024, nullptr, 1h});
  auto r = s.enqueue_wait(make_entry({"a@example.com"}));
  const auto now = std::chrono::system_clock::now();
  attempt_record done;
  done.updates.push_back({r.queue_id, 0, recipient_state::delivered, 1, now, {250, "2.0.0", "ok"}, "file", ""});
  ASSERT_EQ(s.record_wait(done), "");
  EXPECT_TRUE(s.pending().empty());
  EXPECT_FALSE(s.load(r.queue_id)->msg->raw.empty()) << "kept for resends";
  EXPECT_EQ(s.purge_content(now + 30min), 0u);
  EXPECT_FALSE(s.load(r.queue_id)->msg->raw.empty());
  EXPECT_EQ(s.purge_content(now + 2h), 1u);
  EXPECT_TRUE(s.load(r.queue_id)->msg->raw.empty());
}

TEST(spool, purging_many_finished_messages_goes_in_rounds_and_misses_none) {
  temp_dir dir;
  spool s({dir.path(), 1024, nullptr, 1h});
  constexpr int n = 5001;  // one more than a round
  const auto ids = delivered_messages(s, n);
  const auto now = std::chrono::system_clock::now();
  EXPECT_EQ(s.purge_content(now + 2h), static_cast<std::size_t>(n));
  EXPECT_TRUE(s.load(ids.front())->msg->raw.empty());
  EXPECT_TRUE(s.load(ids.back())->msg->raw.empty());
  EXPECT_EQ(s.purge_content(now + 2h), 0u);
}

TEST(spool, purge_history_deletes_what_finished_before_the_cutoff_and_nothing_else) {
  temp_dir dir;
  spool_options options{dir.path()};
  options.segment_bytes = 150000;
  spool s(options);
  const auto old_done = s.enqueue_wait(make_entry({"a@example.com"}, std::string(100000, 'o'))).queue_id;
  const auto old_open = s.enqueue_wait(make_entry({"b@example.com"})).queue_id;  // deferred: still pending
  const auto finished_at = std::chrono::system_clock::now();
  attempt_record outcomes;
  outcomes.updates.push_back({old_done, 0, recipient_state::delivered, 1, finished_at, {250, "2.0.0", "ok"}, "file", ""});
  outcomes.events.push_back({finished_at, old_done, "a@example.com", "delivered", "file", {250, "2.0.0", "ok"}});
  outcomes.updates.push_back({old_open, 0, recipient_state::deferred, 1, finished_at + 1h, {451, "4.0.0", "later"}, "file", ""});
  outcomes.events.push_back({finished_at, old_open, "b@example.com", "deferred", "file", {451, "4.0.0", "later"}});
  ASSERT_EQ(s.record_wait(outcomes), "");
  std::this_thread::sleep_for(5ms);
  const auto cutoff = std::chrono::system_clock::now();
  std::this_thread::sleep_for(5ms);
  // Large too: it starts a new segment, so the old one is no longer the one being written.
  const auto young = s.enqueue_wait(make_entry({"c@example.com"}, std::string(100000, 'y'))).queue_id;
  ASSERT_EQ(segment_count(dir.path()), 2u);

  EXPECT_EQ(s.purge_history(cutoff), 1u);
  EXPECT_FALSE(s.load(old_done)) << "finished before the cutoff: gone, with its recipients and events";
  EXPECT_TRUE(s.events(old_done).empty());
  EXPECT_TRUE(s.load(old_open)) << "not finished: kept, however old";
  EXPECT_TRUE(s.load(young));
  EXPECT_EQ(segment_count(dir.path()), 1u) << "its body segment went with it";
  EXPECT_EQ(s.purge_history(cutoff), 0u);
}

TEST(spool, purge_history_never_lets_an_event_seq_come_round_again) {
  // The webhook dispatcher reads events after the last seq it saw: a seq handed out twice
  // would be an event it never sends.
  temp_dir dir;
  spool s({dir.path()});
  const auto id = s.enqueue_wait(make_entry({"a@example.com"})).queue_id;
  const auto now = std::chrono::system_clock::now();
  attempt_record done;
  done.updates.push_back({id, 0, recipient_state::delivered, 1, now, {250, "2.0.0", "ok"}, "file", ""});
  done.events.push_back({now, id, "a@example.com", "delivered", "file", {250, "2.0.0", "ok"}});
  ASSERT_EQ(s.record_wait(done), "");
  const auto seen = s.events_after(0, 10);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(s.purge_history(std::chrono::system_clock::now() + 1h), 1u);

  const auto next = s.enqueue_wait(make_entry({"b@example.com"})).queue_id;
  attempt_record later;
  later.updates.push_back({next, 0, recipient_state::delivered, 1, now, {250, "2.0.0", "ok"}, "file", ""});
  later.events.push_back({now, next, "b@example.com", "delivered", "file", {250, "2.0.0", "ok"}});
  ASSERT_EQ(s.record_wait(later), "");
  const auto after = s.events_after(seen[0].seq, 10);
  ASSERT_EQ(after.size(), 1u) << "the new event comes after the cursor";
  EXPECT_EQ(after[0].event.queue_id, next);
}

TEST(spool, purge_history_goes_in_rounds_and_keeps_open_campaigns) {
  temp_dir dir;
  spool s({dir.path()});
  constexpr int n = 5002;
  const auto ids = delivered_messages(s, n, [](new_entry& e, int i) { e.msg.campaign_id = i < 2 ? "OPEN" : ""; });
  const auto keep = [](std::string_view campaign) { return campaign == "OPEN"; };
  EXPECT_EQ(s.purge_history(std::chrono::system_clock::now() + 1h, keep), static_cast<std::size_t>(n - 2));
  EXPECT_TRUE(s.load(ids[0]) && s.load(ids[1])) << "a campaign whose end is not reported keeps its messages";
  EXPECT_FALSE(s.load(ids[n - 1]));
}

TEST(spool, scheduled_messages_wait_until_due) {
  temp_dir dir;
  spool s({dir.path()});
  std::vector<std::string> handed;
  s.on_enqueued([&](spool::stored_messages m) {
    for (auto& x : m) handed.push_back(x->queue_id);
  });
  auto e = make_entry({"a@example.com"});
  const auto now = std::chrono::system_clock::now();
  e.not_before = now + 1h;
  auto r = s.enqueue_wait(std::move(e));
  auto at_once = s.enqueue_wait(make_entry({"b@example.com"}));
  s.wait_idle();
  EXPECT_EQ(handed, std::vector<std::string>{at_once.queue_id}) << "a scheduled message is not handed over";
  const auto due_now = s.due(now + 1min, 10);
  EXPECT_EQ(std::count(due_now.begin(), due_now.end(), r.queue_id), 0);
  const auto due_later = s.due(now + 2h, 10);
  EXPECT_EQ(std::count(due_later.begin(), due_later.end(), r.queue_id), 1);
  s.on_enqueued(nullptr);
}

TEST(spool, a_record_can_queue_new_messages_atomically) {
  temp_dir dir;
  spool s({dir.path()});
  auto r = s.enqueue_wait(make_entry({"a@example.com"}));
  attempt_record rec;
  rec.updates.push_back({r.queue_id, 0, recipient_state::failed, 1, std::chrono::system_clock::now(), {550, "5.1.1", "no"}, "", ""});
  auto dsn = make_entry({"sender@example.com"});
  const auto dsn_id = dsn.msg.queue_id;
  rec.new_messages.push_back(std::move(dsn));
  ASSERT_EQ(s.record_wait(std::move(rec)), "");
  ASSERT_TRUE(s.load(dsn_id));
  EXPECT_EQ(s.pending().size(), 1u);
}

TEST(spool, an_outcome_for_a_deleted_message_changes_nothing_and_sends_no_report) {
  temp_dir dir;
  spool s({dir.path()});
  auto r = s.enqueue_wait(make_entry({"a@example.com"}));
  ASSERT_EQ(s.remove(r.queue_id), 1u);  // the operator deletes it while an attempt runs
  attempt_record late;
  const auto now = std::chrono::system_clock::now();
  late.updates.push_back({r.queue_id, 0, recipient_state::deferred, 1, now, {451, "4.0.0", "later"}, "file", ""});
  late.events.push_back({now, r.queue_id, "a@example.com", "deferred", "file", {451, "4.0.0", "later"}});
  auto dsn = make_entry({"sender@example.com"});
  const auto dsn_id = dsn.msg.queue_id;
  late.new_messages.push_back(std::move(dsn));
  ASSERT_EQ(s.record_wait(std::move(late)), "");
  EXPECT_EQ(s.load(r.queue_id)->recipients[0].state, recipient_state::failed);
  EXPECT_EQ(s.events(r.queue_id).back().type, "deleted");
  EXPECT_FALSE(s.load(dsn_id)) << "no report about a deleted message";
  EXPECT_TRUE(s.pending().empty());
}

TEST(spool, one_bad_operation_does_not_fail_its_batch) {
  temp_dir dir;
  spool s({dir.path()});
  auto a = make_entry({"a@example.com"});
  auto b = make_entry({"b@example.com"});
  b.msg.queue_id = a.msg.queue_id;  // primary key clash: b must fail alone
  auto c = make_entry({"c@example.com"});
  std::promise<enqueue_result> pa, pb, pc;
  s.enqueue(std::move(a), [&](enqueue_result r) { pa.set_value(r); });
  s.enqueue(std::move(b), [&](enqueue_result r) { pb.set_value(r); });
  s.enqueue(std::move(c), [&](enqueue_result r) { pc.set_value(r); });
  EXPECT_TRUE(pa.get_future().get().ok);
  auto rb = pb.get_future().get();
  EXPECT_FALSE(rb.ok);
  EXPECT_NE(rb.error.find("UNIQUE"), std::string::npos) << rb.error;
  EXPECT_TRUE(pc.get_future().get().ok);
  EXPECT_EQ(s.pending().size(), 2u);
}

TEST(spool, operator_actions) {
  temp_dir dir;
  spool s({dir.path()});
  auto r = s.enqueue_wait(make_entry({"a@example.com"}));
  const auto now = std::chrono::system_clock::now();
  EXPECT_EQ(s.hold(r.queue_id), 1u);
  EXPECT_EQ(s.hold(r.queue_id), 0u);
  EXPECT_TRUE(s.load(r.queue_id)->held);
  EXPECT_TRUE(s.due(now + 1s, 10).empty()) << "held mail is not due";
  EXPECT_EQ(s.release(r.queue_id), 1u);
  EXPECT_EQ(s.due(now + 1s, 10).size(), 1u);

  attempt_record later;
  later.updates.push_back({r.queue_id, 0, recipient_state::deferred, 1, now + 1h, {451, "4.0.0", "x"}, "", ""});
  s.record_wait(later);
  EXPECT_TRUE(s.due(now + 1s, 10).empty());
  EXPECT_EQ(s.flush(""), 1u);
  EXPECT_EQ(s.due(std::chrono::system_clock::now() + 1s, 10).size(), 1u);

  EXPECT_EQ(s.remove(r.queue_id), 1u);
  EXPECT_TRUE(s.pending().empty());
  EXPECT_EQ(s.load(r.queue_id)->recipients[0].state, recipient_state::failed);
  EXPECT_EQ(s.events(r.queue_id).back().type, "deleted");
  EXPECT_EQ(s.remove("NOSUCHMESSAGE000"), 0u);
}

/// Fills a 512 KiB tmpfs with a 2 MiB message, in a child process; 0 when the spool refused it
/// as a full disk and went on taking small mail.
int fill_a_small_disk(const std::filesystem::path& mount_point, std::size_t inline_body_max) {
  return postern::testing::run_with_tmpfs(mount_point, 512, "", [&] {
    spool_options options{mount_point};
    options.inline_body_max = inline_body_max;
    spool s(options);
    auto small = s.enqueue_wait(make_entry({"a@example.com"}));
    if (!small.ok) return 10;
    auto big = s.enqueue_wait(make_entry({"b@example.com"}, std::string(2 << 20, 'x')));
    if (big.ok) return 11;
    if (big.error.find("full") == std::string::npos) {
      std::fprintf(stderr, "unexpected error: %s\n", big.error.c_str());
      return 12;
    }
    if (s.pending().size() != 1 || !s.load(small.queue_id)) return 13;
    // Room again for small mail: the spool keeps working after the error.
    auto again = s.enqueue_wait(make_entry({"c@example.com"}));
    return again.ok ? 0 : 14;
  });
}

TEST(spool, full_disk_refuses_and_keeps_what_it_had) {
  temp_dir dir;
  // Once with the body in a segment file (the default for large bodies), once in SQLite.
  for (const std::size_t inline_max : {std::size_t{16 * 1024}, std::size_t{8 << 20}}) {
    const int rc = fill_a_small_disk(dir / ("small" + std::to_string(inline_max)), inline_max);
    ASSERT_NE(rc, -1) << "could not mount a tmpfs in a private namespace";
    EXPECT_EQ(rc, 0) << "inline_body_max " << inline_max;
  }
}


TEST(spool, large_bodies_live_in_segment_files_and_survive_reopening) {
  temp_dir dir;
  const std::string large(100000, 'L');
  std::string small_id, large_id;
  {
    spool s({dir.path()});
    small_id = s.enqueue_wait(make_entry({"a@example.com"}, "small")).queue_id;
    large_id = s.enqueue_wait(make_entry({"b@example.com"}, large)).queue_id;
    EXPECT_EQ(segment_count(dir.path()), 1u) << "the small body stays in the database";
  }
  spool s({dir.path()});
  EXPECT_EQ(s.load(small_id)->msg->raw, "Subject: test\r\n\r\nsmall\r\n");
  EXPECT_EQ(s.load(large_id)->msg->raw, "Subject: test\r\n\r\n" + large + "\r\n");
  EXPECT_TRUE(s.load(large_id, false)->msg->raw.empty());
  EXPECT_EQ(s.load(large_id, false)->size, large.size() + 19);
}

TEST(spool, a_segment_is_deleted_once_no_message_needs_it) {
  temp_dir dir;
  spool_options options{dir.path()};
  options.keep_content = std::chrono::hours(1);
  options.segment_bytes = 150000;  // one 100 KB body per segment
  spool s(options);
  const std::string large(100000, 'L');
  const auto kept = s.enqueue_wait(make_entry({"a@example.com"}, large)).queue_id;
  const auto removed = s.enqueue_wait(make_entry({"b@example.com"}, large)).queue_id;
  (void)s.enqueue_wait(make_entry({"c@example.com"}, large));  // the current segment
  ASSERT_EQ(segment_count(dir.path()), 3u);

  EXPECT_EQ(s.remove(removed), 1u);
  EXPECT_EQ(segment_count(dir.path()), 2u) << "a deleted message's segment goes at once";

  const auto now = std::chrono::system_clock::now();
  attempt_record done;
  done.updates.push_back({kept, 0, recipient_state::delivered, 1, now, {250, "2.0.0", "ok"}, "file", ""});
  ASSERT_EQ(s.record_wait(done), "");
  EXPECT_EQ(segment_count(dir.path()), 2u) << "kept for resends";
  EXPECT_EQ(s.load(kept)->msg->raw.size(), large.size() + 19);
  EXPECT_EQ(s.purge_content(now + 2h), 1u);
  EXPECT_EQ(segment_count(dir.path()), 1u);
  EXPECT_TRUE(s.load(kept)->msg->raw.empty());
}

TEST(spool, a_database_of_a_newer_version_is_refused) {
  temp_dir dir;
  {
    spool s({dir.path()});
  }
  {
    database db(dir / "queue.db", false);
    db.exec("PRAGMA user_version = 4");
  }
  try {
    spool s({dir.path()});
    ADD_FAILURE() << "opened a database of a newer version";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("newer postern (version 4"), std::string::npos) << e.what();
  }
}

TEST(spool, a_database_of_version_2_keeps_its_bodies_and_takes_segments) {
  temp_dir dir;
  {
    // The layout before segment files: every body in the messages table.
    database db(dir / "queue.db", false);
    db.exec(R"sql(
      CREATE TABLE messages(id TEXT PRIMARY KEY, origin_key TEXT, source TEXT NOT NULL, tenant TEXT NOT NULL,
        stream INTEGER NOT NULL, tags TEXT NOT NULL, campaign_id TEXT, mail_from TEXT NOT NULL, envid TEXT,
        ret INTEGER NOT NULL, arrival INTEGER NOT NULL, size INTEGER NOT NULL, held INTEGER NOT NULL DEFAULT 0,
        done_at INTEGER, body BLOB);
      CREATE INDEX messages_kept ON messages(done_at) WHERE done_at IS NOT NULL AND body IS NOT NULL;
      INSERT INTO messages(id, source, tenant, stream, tags, mail_from, ret, arrival, size, body)
        VALUES('OLDMESSAGE000001', 'smtp', 'shop', 0, '[]', 's@example.com', 0, 0, 5, 'hello');
      PRAGMA user_version = 2;)sql");
  }
  spool s({dir.path()});
  EXPECT_EQ(s.load("OLDMESSAGE000001")->msg->raw, "hello");
  const auto large = s.enqueue_wait(make_entry({"a@example.com"}, std::string(50000, 'x')));
  ASSERT_TRUE(large.ok) << large.error;
  EXPECT_EQ(s.load(large.queue_id)->msg->raw.size(), 50000u + 19);
  database check(dir / "queue.db", true);
  statement version(check, "PRAGMA user_version");
  ASSERT_TRUE(version.step());
  EXPECT_EQ(version.column_int(0), 3);
}

TEST(queue_id, sorts_by_time_and_has_a_fixed_shape) {
  const auto t = std::chrono::system_clock::now();
  const auto a = make_queue_id(t);
  const auto b = make_queue_id(t + 1ms);
  EXPECT_EQ(a.size(), 16u);
  EXPECT_LT(a, b);
  EXPECT_TRUE(looks_like_queue_id(a));
  EXPECT_FALSE(looks_like_queue_id("not-an-id"));
  EXPECT_NE(make_queue_id(t), make_queue_id(t));
}

}  // namespace
}  // namespace postern::spool
