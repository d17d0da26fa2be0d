#include "campaign/campaign_service.hpp"

#include "mocks/mock_policy.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>
#include <utility>

namespace postern::campaign {
namespace {

using postern::testing::mock_policy;
using postern::testing::temp_dir;
using ::testing::_;
using ::testing::AnyNumber;
using ::testing::Invoke;
using ::testing::NiceMock;
using ::testing::Return;

/// Drops addresses that start with "x", prices the rest at 2 credits, and says which stage
/// and mode it was asked in.
postern::verdict pricing(const postern::submission_view& s, postern::policy_stage stage) {
  auto v = postern::verdict::accept();
  if (stage != postern::policy_stage::content || !s.campaign) return v;
  for (const auto& r : s.recipients) {
    if (r.address.starts_with("x")) v.drops.push_back({r.index, "no x"});
    else v.cost += 2;
  }
  return v;
}

class campaign_service_test : public ::testing::Test {
 protected:
  void SetUp() override {
    ON_CALL(*policy_, check(_, _)).WillByDefault(Invoke(pricing));
    ON_CALL(*policy_, on_campaign_start(_)).WillByDefault(Return(postern::verdict::accept()));
    std::vector<contacts::activity> orders;
    for (const char* a : {"ann@example.com", "bob@example.com", "xena@example.com", "carl@example.com"})
      orders.push_back({a, contacts::activity_kind::order, {"X"}, "", std::chrono::system_clock::now()});
    orders.push_back({"dora@example.com", contacts::activity_kind::cart, {"X"}, "", std::chrono::system_clock::now()});
    contacts_.record("shop", orders, std::chrono::system_clock::now());
  }

  definition buyers_of_x() const {
    definition def;
    def.tenant = "shop";
    def.name = "X news";
    def.rule.bought_any = {"X"};
    def.mail_from = "news@shop.example";
    def.raw = "From: news@shop.example\r\nSubject: X\r\n\r\nnews\r\n";
    def.content_key = "X\nnews";
    def.audience_key = R"({"bought_any":["X"]})";
    return def;
  }

  temp_dir dir_;
  spool::spool spool_{{dir_ / "spool"}};
  contacts::contact_store contacts_{dir_ / "contacts.db"};
  campaign_store store_{dir_ / "campaigns.db"};
  std::shared_ptr<NiceMock<mock_policy>> policy_ = std::make_shared<NiceMock<mock_policy>>();
  policies::chain chain_{{{"pricing", policy_}}};
  submission::service submission_{spool_, chain_, {"gw.example"}};
  campaign_service service_{submission_, spool_, contacts_, store_, chain_};
};

TEST_F(campaign_service_test, the_dry_run_and_the_send_select_the_same_recipients) {
  const auto report = service_.dry_run(buyers_of_x(), true);
  EXPECT_EQ(report.selected, 4u);
  EXPECT_EQ(report.remaining, 3u);
  EXPECT_EQ(report.cost, 6);
  ASSERT_EQ(report.drops.size(), 1u);
  EXPECT_EQ(report.drops[0].policy, "pricing");
  EXPECT_EQ(report.drops[0].count, 1u);
  EXPECT_TRUE(store_.list("shop", 10, {}).empty()) << "a dry run records nothing";
  EXPECT_TRUE(spool_.pending().empty());

  auto [record, sent] = service_.create(buyers_of_x(), false);
  EXPECT_EQ(sent.remaining, report.remaining);
  EXPECT_EQ(sent.cost, report.cost);
  std::vector<std::string> pending;
  for (const auto& r : store_.pending(record.id, 10)) pending.push_back(r.email);
  std::vector<std::string> reported;
  for (const auto& r : report.recipients) reported.push_back(r.email);
  EXPECT_EQ(pending, reported);
  EXPECT_EQ(store_.find("shop", record.id)->cost, 6);
}

TEST_F(campaign_service_test, a_refused_start_records_nothing) {
  EXPECT_CALL(*policy_, on_campaign_start(_))
      .WillOnce(Invoke([](const postern::campaign_summary& s) {
        EXPECT_EQ(s.cost, 6);
        EXPECT_EQ(s.selected, 4u);
        EXPECT_EQ(s.dropped, 1u);
        return postern::verdict::reject(550, "5.7.1", "costs 6 credits; tenant shop has 4 left");
      }));
  auto [record, report] = service_.create(buyers_of_x(), false);
  ASSERT_TRUE(report.refused);
  EXPECT_EQ(report.refused->policy, "pricing");
  EXPECT_EQ(report.refused->reply.text, "costs 6 credits; tenant shop has 4 left");
  EXPECT_FALSE(store_.find("shop", record.id));
  EXPECT_TRUE(store_.pending(record.id, 10).empty());
}

TEST_F(campaign_service_test, a_campaign_stage_refusal_stops_before_selection) {
  EXPECT_CALL(*policy_, check(_, postern::policy_stage::campaign))
      .WillRepeatedly(Return(postern::verdict::reject(550, "5.7.1", "sent before")));
  EXPECT_CALL(*policy_, check(_, postern::policy_stage::content)).Times(0);
  const auto report = service_.dry_run(buyers_of_x(), false);
  ASSERT_TRUE(report.refused);
  EXPECT_EQ(report.selected, 0u);
}

TEST_F(campaign_service_test, the_feeder_spools_each_recipient_once_and_a_cancel_ends_it_once) {
  EXPECT_CALL(*policy_, on_campaign_end(_)).Times(1);
  service_.run();
  auto [record, report] = service_.create(buyers_of_x(), false);
  const auto id = record.id;
  for (int i = 0; i < 500 && store_.counts(id).queued < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(store_.counts(id).queued, 3u);
  const auto messages = spool_.pending();
  ASSERT_EQ(messages.size(), 3u);
  for (const auto& m : messages) {
    EXPECT_EQ(m.msg->campaign_id, id);
    EXPECT_EQ(m.msg->stream, postern::mail_stream::marketing);
  }
  // Nothing is delivered here: the campaign waits for its messages, then the cancel ends them.
  EXPECT_EQ(store_.find("shop", id)->state, campaign_state::sending);
  ASSERT_TRUE(std::holds_alternative<campaign_state>(service_.change("shop", id, "cancel")));
  for (int i = 0; i < 500 && !store_.find("shop", id)->end_reported; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(store_.find("shop", id)->end_reported);
  EXPECT_EQ(spool_.campaign_stats(id).messages_pending, 0u);
  // The final states stay with the campaign after the spool has deleted its messages.
  EXPECT_EQ(spool_.purge_history(std::chrono::system_clock::now() + std::chrono::hours(1)), 3u);
  EXPECT_EQ(spool_.campaign_stats(id).failed, 0u);
  const auto after = service_.status("shop", id);
  EXPECT_EQ(after->spooled.failed, 3u);
  EXPECT_EQ(after->spooled.cancelled, 3u);
  EXPECT_TRUE(std::holds_alternative<std::string>(service_.change("shop", id, "resume")));
  service_.stop();
}

TEST_F(campaign_service_test, a_draft_waits_for_send) {
  auto [draft, report] = service_.create(buyers_of_x(), true);
  EXPECT_EQ(report.remaining, 3u);
  EXPECT_EQ(store_.find("shop", draft.id)->state, campaign_state::draft);
  EXPECT_TRUE(store_.pending(draft.id, 10).empty());
  const auto sent = service_.send_draft(*store_.find("shop", draft.id));
  ASSERT_TRUE(sent);
  EXPECT_EQ(store_.find("shop", draft.id)->state, campaign_state::sending);
  EXPECT_EQ(store_.pending(draft.id, 10).size(), 3u);
  EXPECT_FALSE(service_.send_draft(*store_.find("shop", draft.id))) << "not a draft any more";
}

TEST_F(campaign_service_test, a_start_cut_short_by_a_crash_leaves_a_draft) {
  campaign_record r;
  r.id = "Ccrashed";
  r.tenant = "shop";
  r.name = "X news";
  r.state = campaign_state::starting;
  r.definition = r.audience = "{}";
  r.created = std::chrono::system_clock::now();
  store_.insert(r);
  store_.add_recipients(r.id, {{0, "ann@example.com"}});
  service_.run();
  service_.stop();
  const auto after = store_.find("shop", r.id);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, campaign_state::draft);
  EXPECT_TRUE(store_.pending(r.id, 10).empty());
}

TEST_F(campaign_service_test, a_recipient_already_in_the_spool_is_not_checked_or_spooled_again) {
  auto [record, report] = service_.create(buyers_of_x(), false);
  // As after a crash between the spool's commit and the campaign's own record.
  spool::new_entry earlier;
  earlier.msg.queue_id = "EARLIERQUEUEID01";
  earlier.msg.tenant = "shop";
  earlier.msg.campaign_id = record.id;
  earlier.msg.env.mail_from = "news@shop.example";
  earlier.msg.env.recipients.push_back({0, "ann@example.com", "", 0});
  earlier.msg.raw = "Subject: X\r\n\r\nnews\r\n";
  earlier.msg.arrival = std::chrono::system_clock::now();
  earlier.origin_key = "campaign:" + record.id + ":ann@example.com";
  ASSERT_TRUE(spool_.enqueue_wait(std::move(earlier)).ok);
  service_.run();
  for (int i = 0; i < 500 && store_.counts(record.id).queued < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  service_.stop();
  const auto queued = store_.recipients(record.id, recipient_state::queued, 0, 10);
  ASSERT_EQ(queued.size(), 3u);
  EXPECT_EQ(queued[0].email, "ann@example.com");
  EXPECT_EQ(queued[0].queue_id, "EARLIERQUEUEID01");
  EXPECT_EQ(spool_.pending().size(), 3u) << "ann's message is not stored twice";
}

TEST_F(campaign_service_test, what_policies_record_for_a_recipient_not_sent_is_undone) {
  // A counting policy first (as frequency_cap would be), then one that drops bob and defers
  // carl once: the counts are of messages that went out, one each, whatever the order.
  auto counter = std::make_shared<NiceMock<mock_policy>>();
  auto gate = std::make_shared<NiceMock<mock_policy>>();
  ON_CALL(*counter, check(_, _)).WillByDefault(Invoke([&](const postern::submission_view& s, postern::policy_stage stage) {
    if (stage == postern::policy_stage::content && s.campaign && !s.dry_run)
      for (const auto& r : s.recipients) store_.data_add("counter", r.address, 1, 100);
    return postern::verdict::accept();
  }));
  bool carl_deferred = false;
  ON_CALL(*gate, check(_, _)).WillByDefault(Invoke([&](const postern::submission_view& s, postern::policy_stage stage) {
    auto v = postern::verdict::accept();
    if (stage != postern::policy_stage::content || !s.campaign || s.dry_run) return v;
    for (const auto& r : s.recipients) {
      if (r.address == "bob@example.com") v.drops.push_back({r.index, "no bob"});
      if (r.address == "carl@example.com" && !std::exchange(carl_deferred, true))
        return postern::verdict::defer(451, "4.7.0", "later");
    }
    return v;
  }));
  ON_CALL(*gate, on_campaign_start(_)).WillByDefault(Return(postern::verdict::accept()));
  ON_CALL(*counter, on_campaign_start(_)).WillByDefault(Return(postern::verdict::accept()));
  policies::chain chain{{{"counter", counter}, {"gate", gate}}};
  submission::service submission{spool_, chain, {"gw.example"}};
  campaign_service service{submission, spool_, contacts_, store_, chain};
  service.run();
  auto [record, report] = service.create(buyers_of_x(), false);
  for (int i = 0; i < 500 && store_.counts(record.id).pending > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  service.stop();
  EXPECT_TRUE(carl_deferred);
  EXPECT_EQ(store_.counts(record.id).queued, 3u);  // ann, xena, carl
  EXPECT_EQ(store_.data_get("counter", "ann@example.com"), "1");
  EXPECT_EQ(store_.data_get("counter", "carl@example.com"), "1") << "a deferred recipient is counted once";
  EXPECT_EQ(store_.data_get("counter", "bob@example.com"), std::nullopt) << "a dropped recipient is not counted";
}

/// In a child process: a campaign of four 64 KiB messages into a spool on a tmpfs that a
/// ballast file keeps full; the ballast goes after half a second of refusals. 0 when every
/// recipient was then spooled and counted once, however often the spool refused them.
int spool_after_a_full_disk(const std::filesystem::path& dir) {
  return postern::testing::run_with_tmpfs(dir / "disk", 1024, "", [&] {
    spool::spool spool({dir / "disk" / "spool"});
    {
      std::ofstream ballast(dir / "disk" / "ballast");
      const std::string block(4096, 'b');
      while (ballast.write(block.data(), static_cast<std::streamsize>(block.size())) && ballast.flush()) {
      }
    }
    contacts::contact_store contacts(dir / "contacts.db");
    campaign_store store(dir / "campaigns.db");
    std::vector<contacts::activity> orders;
    for (const char* a : {"ann@example.com", "bob@example.com", "carl@example.com", "dora@example.com"})
      orders.push_back({a, contacts::activity_kind::order, {"X"}, "", std::chrono::system_clock::now()});
    contacts.record("shop", orders, std::chrono::system_clock::now());
    auto counter = std::make_shared<NiceMock<mock_policy>>();
    ON_CALL(*counter, check(_, _)).WillByDefault(Invoke([&](const postern::submission_view& s, postern::policy_stage st) {
      if (st == postern::policy_stage::content && s.campaign && !s.dry_run)
        for (const auto& r : s.recipients) store.data_add("counter", r.address, 1, 100);
      return postern::verdict::accept();
    }));
    ON_CALL(*counter, on_campaign_start(_)).WillByDefault(Return(postern::verdict::accept()));
    policies::chain chain{{{"counter", counter}}};
    submission::service submission{spool, chain, {"gw.example"}};
    campaign_service service{submission, spool, contacts, store, chain};
    definition def;
    def.tenant = "shop";
    def.name = "big";
    def.rule.bought_any = {"X"};
    def.mail_from = "news@shop.example";
    def.raw = "From: news@shop.example\r\nSubject: X\r\n\r\n" + std::string(64 * 1024, 'x') + "\r\n";
    def.content_key = "big";
    def.audience_key = "X";
    service.run();
    auto [record, report] = service.create(def, false);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (store.counts(record.id).queued == 4) return 10;  // the disk was not full after all
    std::filesystem::remove(dir / "disk" / "ballast");
    for (int i = 0; i < 500 && store.counts(record.id).queued < 4; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    service.stop();
    if (store.counts(record.id).queued != 4) return 11;
    for (const char* a : {"ann@example.com", "bob@example.com", "carl@example.com", "dora@example.com"}) {
      if (store.data_get("counter", a) != "1") {
        std::fprintf(stderr, "%s counted %s times\n", a, store.data_get("counter", a).value_or("0").c_str());
        return 12;
      }
    }
    return 0;
  });
}

TEST(campaign_service, recipients_the_spool_refuses_for_now_are_spooled_later_and_counted_once) {
  temp_dir dir;
  const int rc = spool_after_a_full_disk(dir.path());
  ASSERT_NE(rc, -1) << "could not mount a tmpfs in a private namespace";
  EXPECT_EQ(rc, 0);
}

TEST_F(campaign_service_test, cancelling_again_is_allowed_and_changes_nothing_more) {
  auto [record, report] = service_.create(buyers_of_x(), false);
  EXPECT_TRUE(std::holds_alternative<campaign_state>(service_.change("shop", record.id, "cancel")));
  EXPECT_TRUE(std::holds_alternative<campaign_state>(service_.change("shop", record.id, "cancel")));
  EXPECT_EQ(store_.counts(record.id).cancelled, 3u);
  EXPECT_TRUE(std::holds_alternative<std::string>(service_.change("shop", record.id, "pause")));
}

TEST_F(campaign_service_test, a_large_campaigns_counts_are_kept_for_a_while_and_dropped_by_an_action) {
  std::vector<contacts::activity> orders;
  for (std::uint64_t i = 0; i < campaign_service::large_campaign; ++i)
    orders.push_back({"c" + std::to_string(i) + "@example.com", contacts::activity_kind::order, {"X"}, "",
                      std::chrono::system_clock::now()});
  contacts_.record("shop", orders, std::chrono::system_clock::now());
  // Counts kept an hour here, so that a slow machine cannot make them expire mid-test.
  campaign_service service{submission_, spool_, contacts_, store_, chain_, std::chrono::hours(1)};
  auto [record, report] = service.create(buyers_of_x(), false);  // no feeder runs: all stay pending
  const auto before = service.status("shop", record.id);
  ASSERT_TRUE(before);
  ASSERT_GE(before->own.pending, campaign_service::large_campaign);

  // Changed underneath: status() answers the counts it has...
  const auto row = store_.pending(record.id, 1).at(0);
  store_.update(record.id, {{row.seq, row.email, recipient_state::dropped, "test", "gone", ""}});
  EXPECT_EQ(service.status("shop", record.id)->own.pending, before->own.pending);
  // ...and the effect of an action at once, with the fresh state.
  ASSERT_TRUE(std::holds_alternative<campaign_state>(service.change("shop", record.id, "pause")));
  const auto after = service.status("shop", record.id);
  EXPECT_EQ(after->record.state, campaign_state::paused);
  EXPECT_EQ(after->own.pending, before->own.pending - 1);
  EXPECT_EQ(after->own.dropped, before->own.dropped + 1);
}

}  // namespace
}  // namespace postern::campaign
