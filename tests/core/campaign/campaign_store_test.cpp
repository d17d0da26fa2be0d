#include "campaign/campaign_store.hpp"

#include "plugin_host/plugin_data.hpp"
#include "spool/sqlite.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace postern::campaign {
namespace {

using postern::testing::temp_dir;

campaign_record record(std::string id, std::string tenant = "shop") {
  campaign_record r;
  r.id = std::move(id);
  r.tenant = std::move(tenant);
  r.name = "Z launch";
  r.definition = "{}";
  r.audience = "{}";
  r.mail_from = "news@shop.example";
  r.raw = "Subject: z\r\n\r\nbody\r\n";
  r.tags = {"launch", "z"};
  r.fingerprint = "f1";
  r.created = std::chrono::system_clock::now();
  return r;
}

std::vector<recipient_row> rows(std::initializer_list<const char*> emails) {
  std::vector<recipient_row> out;
  for (const char* e : emails) out.push_back({0, e});
  return out;
}

class campaign_store_test : public ::testing::Test {
 protected:
  temp_dir dir_;
  campaign_store store_{dir_ / "campaigns.db"};
};

TEST_F(campaign_store_test, records_a_campaign_and_its_recipients_in_order) {
  store_.transaction([&] {
    store_.insert(record("C1"));
    store_.add_recipients("C1", rows({"a@example.com", "b@example.com"}));
    auto dropped = rows({"c@example.com"});
    dropped[0].state = recipient_state::dropped;
    dropped[0].policy = "consent";
    dropped[0].reason = "unsubscribed";
    store_.add_recipients("C1", dropped);
  });
  const auto found = store_.find("shop", "C1");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->tags, (std::vector<std::string>{"launch", "z"}));
  EXPECT_EQ(found->raw, "Subject: z\r\n\r\nbody\r\n");
  EXPECT_FALSE(store_.find("other", "C1")) << "another tenant's campaign is not found";
  const auto pending = store_.pending("C1", 10);
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].email, "a@example.com");
  EXPECT_EQ(pending[1].seq, 2);
  store_.update("C1", {{pending[0].seq, "a@example.com", recipient_state::queued, "", "", "Q1"}});
  const auto c = store_.counts("C1");
  EXPECT_EQ((std::vector<std::uint64_t>{c.pending, c.queued, c.dropped, c.cancelled}),
            (std::vector<std::uint64_t>{1, 1, 1, 0}));
  const auto drops = store_.drops("C1");
  ASSERT_EQ(drops.size(), 1u);
  EXPECT_EQ((drops[0].policy + "/" + drops[0].reason), "consent/unsubscribed");
  EXPECT_EQ(store_.cancel_pending("C1"), 1u);
  EXPECT_EQ(store_.recipients("C1", recipient_state::queued, 0, 10).front().queue_id, "Q1");
  EXPECT_EQ(store_.recipients("C1", std::nullopt, 1, 10).size(), 2u) << "paged after seq 1";
}

TEST_F(campaign_store_test, a_throw_rolls_back_the_campaign_and_the_plugin_data_written_with_it) {
  plugin_host::plugin_data credits("credits", &store_);
  credits.put("spent:shop", "5");
  EXPECT_THROW(store_.transaction([&] {
    store_.insert(record("C1"));
    store_.add_recipients("C1", rows({"a@example.com"}));
    ASSERT_TRUE(credits.add("spent:shop", 3, 10));
    throw std::runtime_error("refused");
  }),
               std::runtime_error);
  EXPECT_FALSE(store_.find("shop", "C1"));
  EXPECT_EQ(credits.get("spent:shop"), "5");
  EXPECT_TRUE(store_.pending("C1", 10).empty());
}

TEST_F(campaign_store_test, add_never_passes_the_ceiling_even_from_many_threads) {
  plugin_host::plugin_data data("frequency_cap", &store_);
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i)
        if (data.add("n", 1, 7)) ++granted;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted, 7);
  EXPECT_EQ(data.get("n"), "7");
  EXPECT_FALSE(data.add("n", 1, 7));
}

TEST_F(campaign_store_test, plugins_keys_are_their_own) {
  plugin_host::plugin_data one("one", &store_), two("two", &store_);
  EXPECT_TRUE(one.put_new("k", "1"));
  EXPECT_FALSE(one.put_new("k", "other"));
  EXPECT_EQ(one.get("k"), "1");
  EXPECT_FALSE(two.get("k"));
  one.erase("k");
  EXPECT_FALSE(one.get("k"));
  plugin_host::plugin_data none("three", nullptr);
  EXPECT_THROW(none.get("k"), std::runtime_error);
}

TEST_F(campaign_store_test, states_change_only_from_the_states_given) {
  store_.insert(record("C1"));
  const auto now = std::chrono::system_clock::now();
  EXPECT_TRUE(store_.set_state("C1", campaign_state::paused, {campaign_state::sending}, now));
  EXPECT_FALSE(store_.set_state("C1", campaign_state::paused, {campaign_state::sending}, now));
  EXPECT_TRUE(store_.set_state("C1", campaign_state::cancelled, {campaign_state::sending, campaign_state::paused}, now));
  const auto c = store_.find("shop", "C1");
  EXPECT_EQ(c->state, campaign_state::cancelled);
  EXPECT_NE(c->finished.time_since_epoch().count(), 0);
  ASSERT_EQ(store_.unfinished().size(), 1u) << "its end is not reported yet";
  EXPECT_FALSE(c->final_spool);
  spool::spool_stats final_spool;
  final_spool.delivered = 7;
  final_spool.failed = 2;
  final_spool.cancelled = 1;
  store_.mark_end_reported("C1", final_spool);
  EXPECT_TRUE(store_.unfinished().empty());
  const auto ended = store_.find("shop", "C1");
  ASSERT_TRUE(ended->final_spool);
  EXPECT_EQ(ended->final_spool->delivered, 7u);
  EXPECT_EQ(ended->final_spool->failed, 2u);
  EXPECT_EQ(ended->final_spool->cancelled, 1u);
}

TEST(campaign_store, a_database_from_before_final_spool_gains_the_column) {
  postern::testing::temp_dir dir;
  {
    spool::database db(dir / "campaigns.db", false);
    db.exec("CREATE TABLE campaigns(id TEXT PRIMARY KEY, tenant TEXT NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL,"
            " definition TEXT NOT NULL, audience TEXT NOT NULL, mail_from TEXT NOT NULL, raw BLOB NOT NULL,"
            " tags TEXT NOT NULL, fingerprint TEXT NOT NULL, resend INTEGER NOT NULL, list TEXT NOT NULL,"
            " selected INTEGER NOT NULL, cost INTEGER NOT NULL, created INTEGER NOT NULL,"
            " started INTEGER NOT NULL DEFAULT 0, finished INTEGER NOT NULL DEFAULT 0,"
            " end_reported INTEGER NOT NULL DEFAULT 0);"
            "INSERT INTO campaigns(id, tenant, name, state, definition, audience, mail_from, raw, tags, fingerprint,"
            " resend, list, selected, cost, created, end_reported)"
            " VALUES('C0', 'shop', 'old', 'finished', '{}', '{}', 'a@b.example', '', '', 'f', 0, '', 1, 0, 1, 1)");
  }
  campaign_store store(dir / "campaigns.db");
  const auto old = store.find("shop", "C0");
  ASSERT_TRUE(old);
  EXPECT_FALSE(old->final_spool) << "ended before the column existed: the spool still counts it";
}

TEST_F(campaign_store_test, saved_audiences_per_tenant) {
  const auto now = std::chrono::system_clock::now();
  store_.save_audience("shop", {"buyers", R"({"any_purchase":true})", now});
  store_.save_audience("shop", {"buyers", R"({"any_purchase":false})", now});
  EXPECT_EQ(store_.find_audience("shop", "buyers")->rule, R"({"any_purchase":false})");
  EXPECT_FALSE(store_.find_audience("other", "buyers"));
  EXPECT_EQ(store_.audiences("shop").size(), 1u);
  EXPECT_TRUE(store_.delete_audience("shop", "buyers"));
  EXPECT_FALSE(store_.delete_audience("shop", "buyers"));
}

}  // namespace
}  // namespace postern::campaign
