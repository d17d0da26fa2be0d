#include "store/state_store.hpp"

#include "test_support.hpp"

#include <sqlite3.h>

#include <gtest/gtest.h>

namespace postern::store {
namespace {

using namespace std::chrono_literals;
using postern::testing::temp_dir;

templates::message_template make_template(std::string name, std::string subject) {
  return {std::move(name), std::move(subject), "Hello {{ customer_name }}", "<p>Hello {{ customer_name }}</p>", false};
}

webhook_delivery make_delivery(std::string tenant, std::string payload) {
  webhook_delivery d;
  d.tenant = std::move(tenant);
  d.event_type = "delivered";
  d.url = "https://" + d.tenant + ".example/hook";
  d.payload = std::move(payload);
  return d;
}

std::vector<std::string> payloads(const std::vector<webhook_delivery>& list) {
  std::vector<std::string> out;
  for (const auto& d : list) out.push_back(d.payload);
  return out;
}

/// Runs SQL on the store's file through a second connection (to set up failures).
void exec_on(const std::filesystem::path& file, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

// --- templates -------------------------------------------------------------------------------

TEST(state_store, stores_gets_replaces_and_deletes_templates) {
  temp_dir dir;
  state_store s(dir / "state.db");
  EXPECT_EQ(s.get_template("shop", "welcome"), std::nullopt);
  EXPECT_TRUE(s.list_templates("shop").empty());

  s.put_template("shop", make_template("welcome", "Hi"));
  auto t = s.get_template("shop", "welcome");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->name, "welcome");
  EXPECT_EQ(t->subject, "Hi");
  EXPECT_EQ(t->text, "Hello {{ customer_name }}");
  EXPECT_EQ(t->html, "<p>Hello {{ customer_name }}</p>");
  EXPECT_FALSE(t->builtin);

  s.put_template("shop", make_template("welcome", "Hi again"));
  EXPECT_EQ(s.get_template("shop", "welcome")->subject, "Hi again");
  ASSERT_EQ(s.list_templates("shop").size(), 1u);

  EXPECT_TRUE(s.delete_template("shop", "welcome"));
  EXPECT_FALSE(s.delete_template("shop", "welcome"));
  EXPECT_EQ(s.get_template("shop", "welcome"), std::nullopt);
}

TEST(state_store, lists_a_tenants_templates_by_name_and_only_its_own) {
  temp_dir dir;
  state_store s(dir / "state.db");
  s.put_template("shop", make_template("zebra", "z"));
  s.put_template("shop", make_template("alpha", "a"));
  s.put_template("bakery", make_template("middle", "m"));
  // A tenant may replace a built-in name with its own.
  s.put_template("bakery", make_template("order_shipped", "Your bread is on its way"));
  std::vector<std::string> names;
  for (const auto& t : s.list_templates("shop")) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"alpha", "zebra"}));
  EXPECT_EQ(s.get_template("shop", "middle"), std::nullopt);
  EXPECT_EQ(s.get_template("bakery", "order_shipped")->subject, "Your bread is on its way");
  EXPECT_FALSE(s.delete_template("shop", "middle"));
  EXPECT_TRUE(s.get_template("bakery", "middle"));
}

TEST(state_store, keeps_templates_byte_for_byte_across_reopening) {
  temp_dir dir;
  const std::string body = std::string("Gr\xC3\xBC\xC3\x9F" "e {{ x }}\r\n'\"; DROP TABLE templates; --") + '\t';
  {
    state_store s(dir / "sub" / "state.db");  // the directory is made
    s.put_template("shop", make_template("t", body));
  }
  state_store s(dir / "sub" / "state.db");
  ASSERT_TRUE(s.get_template("shop", "t"));
  EXPECT_EQ(s.get_template("shop", "t")->subject, body);
}

// --- webhooks and signing keys ---------------------------------------------------------------

TEST(state_store, replaces_a_tenants_webhooks) {
  temp_dir dir;
  state_store s(dir / "state.db");
  EXPECT_TRUE(s.webhooks("shop").empty());
  s.set_webhooks("shop", {{"delivered", "https://a.example/d"}, {"bounced", "https://a.example/b"}});
  s.set_webhooks("bakery", {{"failed", "https://b.example/f"}});
  EXPECT_EQ(s.webhooks("shop"), (std::map<std::string, std::string>{{"bounced", "https://a.example/b"},
                                                                     {"delivered", "https://a.example/d"}}));
  // The whole set is replaced: what is not given again is gone.
  s.set_webhooks("shop", {{"failed", "https://a.example/f"}});
  EXPECT_EQ(s.webhooks("shop"), (std::map<std::string, std::string>{{"failed", "https://a.example/f"}}));
  s.set_webhooks("shop", {});
  EXPECT_TRUE(s.webhooks("shop").empty());
  EXPECT_EQ(s.webhooks("bakery"), (std::map<std::string, std::string>{{"failed", "https://b.example/f"}}));
}

TEST(state_store, a_signing_key_is_made_once_and_kept) {
  temp_dir dir;
  std::string key;
  {
    state_store s(dir / "state.db");
    key = s.set_webhooks("shop", {{"delivered", "https://a.example/d"}});
    EXPECT_EQ(key.size(), 64u);  // 32 random bytes in hex
    EXPECT_EQ(key.find_first_not_of("0123456789abcdef"), std::string::npos) << key;
    // Changing the webhooks does not change the key receivers verify with.
    EXPECT_EQ(s.set_webhooks("shop", {{"failed", "https://a.example/f"}}), key);
    EXPECT_EQ(s.signing_key("shop"), key);
    EXPECT_NE(s.signing_key("bakery"), key);
    EXPECT_EQ(s.signing_key("bakery"), s.signing_key("bakery"));
  }
  state_store s(dir / "state.db");
  EXPECT_EQ(s.signing_key("shop"), key);
  EXPECT_EQ(s.set_webhooks("shop", {}), key);
}

// --- webhook deliveries ----------------------------------------------------------------------

// The dispatcher's clock, not the wall clock: deliveries are due at the time they are given.
const auto t0 = std::chrono::system_clock::time_point(std::chrono::seconds(1795514400));

TEST(state_store, adds_deliveries_and_moves_the_cursor) {
  temp_dir dir;
  state_store s(dir / "state.db");
  EXPECT_EQ(s.webhook_cursor(), 0);
  s.add_webhook_deliveries({make_delivery("shop", "{\"n\":1}"), make_delivery("bakery", "{\"n\":2}")}, 17, t0);
  EXPECT_EQ(s.webhook_cursor(), 17);
  EXPECT_TRUE(s.due_webhooks(t0 - 1ms, 10).empty());
  const auto due = s.due_webhooks(t0, 10);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].tenant, "shop");
  EXPECT_EQ(due[0].event_type, "delivered");
  EXPECT_EQ(due[0].url, "https://shop.example/hook");
  EXPECT_EQ(due[0].payload, "{\"n\":1}");
  EXPECT_EQ(due[0].attempts, 0u);
  EXPECT_EQ(due[1].tenant, "bakery");
  EXPECT_NE(due[0].id, due[1].id);
  // The cursor moves with nothing to deliver too (events nobody subscribed to).
  s.add_webhook_deliveries({}, 42, t0);
  EXPECT_EQ(s.webhook_cursor(), 42);
  EXPECT_EQ(s.due_webhooks(t0, 10).size(), 2u);
}

TEST(state_store, deliveries_and_cursor_are_one_transaction) {
  temp_dir dir;
  const auto file = dir / "state.db";
  state_store s(file);
  s.add_webhook_deliveries({make_delivery("shop", "{\"n\":1}")}, 5, t0);
  // Make the cursor update fail after the deliveries are inserted.
  exec_on(file, "CREATE TRIGGER fail_cursor BEFORE UPDATE ON cursors BEGIN SELECT RAISE(ABORT, 'injected'); END;");
  EXPECT_ANY_THROW(
      s.add_webhook_deliveries({make_delivery("shop", "{\"n\":2}"), make_delivery("shop", "{\"n\":3}")}, 9, t0));
  EXPECT_EQ(s.webhook_cursor(), 5);
  EXPECT_EQ(payloads(s.due_webhooks(t0, 10)),
            std::vector<std::string>{"{\"n\":1}"});
  // And the store works on after the rollback.
  exec_on(file, "DROP TRIGGER fail_cursor;");
  s.add_webhook_deliveries({make_delivery("shop", "{\"n\":2}")}, 9, t0);
  EXPECT_EQ(s.webhook_cursor(), 9);
  EXPECT_EQ(payloads(s.due_webhooks(t0, 10)),
            (std::vector<std::string>{"{\"n\":1}", "{\"n\":2}"}));
}

TEST(state_store, due_deliveries_come_oldest_first_up_to_the_limit) {
  temp_dir dir;
  state_store s(dir / "state.db");
  std::vector<webhook_delivery> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(make_delivery("shop", std::to_string(i)));
  s.add_webhook_deliveries(batch, 5, t0);
  s.add_webhook_deliveries({make_delivery("shop", "later")}, 6, t0 + 5s);
  // An earlier round's deliveries come first, whatever their ids.
  s.add_webhook_deliveries({make_delivery("shop", "earlier")}, 7, t0 - 5s);
  const auto now = t0;
  EXPECT_EQ(payloads(s.due_webhooks(now, 3)), (std::vector<std::string>{"earlier", "0", "1"}));
  EXPECT_EQ(payloads(s.due_webhooks(now + 5s, 10)),
            (std::vector<std::string>{"earlier", "0", "1", "2", "3", "4", "later"}));
  s.webhook_done(s.due_webhooks(now, 1)[0].id);
  // A retry goes behind those due earlier.
  const auto first = s.due_webhooks(now, 1)[0].id;
  s.webhook_failed(first, now + 10s);
  EXPECT_EQ(payloads(s.due_webhooks(now, 10)), (std::vector<std::string>{"1", "2", "3", "4"}));
  EXPECT_EQ(payloads(s.due_webhooks(now + 10s, 10)), (std::vector<std::string>{"1", "2", "3", "4", "later", "0"}));
}

TEST(state_store, a_failed_delivery_is_due_again_at_its_time_with_its_attempts) {
  temp_dir dir;
  state_store s(dir / "state.db");
  s.add_webhook_deliveries({make_delivery("shop", "p")}, 1, t0);
  const auto now = t0;
  const auto id = s.due_webhooks(now, 10).at(0).id;
  s.webhook_failed(id, now + 30s);
  EXPECT_TRUE(s.due_webhooks(now + 29s, 10).empty());
  auto due = s.due_webhooks(now + 30s, 10);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].attempts, 1u);
  s.webhook_failed(id, now + 90s);
  EXPECT_TRUE(s.due_webhooks(now + 89s, 10).empty());
  ASSERT_EQ(s.due_webhooks(now + 90s, 10).size(), 1u);
  EXPECT_EQ(s.due_webhooks(now + 90s, 10)[0].attempts, 2u);
}

TEST(state_store, a_delivery_under_a_once_key_is_queued_once_even_after_it_was_delivered) {
  temp_dir dir;
  const auto file = dir / "state.db";
  {
    state_store s(file);
    EXPECT_TRUE(s.add_webhook_delivery(make_delivery("shop", "end of C1"), "campaign_completed:C1", t0));
    EXPECT_FALSE(s.add_webhook_delivery(make_delivery("shop", "end of C1 again"), "campaign_completed:C1", t0));
    EXPECT_TRUE(s.add_webhook_delivery(make_delivery("shop", "end of C2"), "campaign_completed:C2", t0));
    const auto due = s.due_webhooks(t0, 10);
    EXPECT_EQ(payloads(due), (std::vector<std::string>{"end of C1", "end of C2"}));
    s.webhook_done(due[0].id);
  }
  // Reopened (a restart after the delivery was made and removed): still not queued again.
  state_store s(file);
  EXPECT_FALSE(s.add_webhook_delivery(make_delivery("shop", "end of C1, third"), "campaign_completed:C1", t0));
  EXPECT_EQ(payloads(s.due_webhooks(t0, 10)), std::vector<std::string>{"end of C2"});
}

TEST(state_store, done_and_given_up_deliveries_are_never_due) {
  temp_dir dir;
  const auto file = dir / "state.db";
  const auto far = t0 + 24h * 365;
  {
    state_store s(file);
    s.add_webhook_deliveries({make_delivery("shop", "done"), make_delivery("shop", "gave up"),
                              make_delivery("shop", "pending")},
                             3, t0);
    const auto due = s.due_webhooks(t0, 10);
    ASSERT_EQ(due.size(), 3u);
    s.webhook_done(due[0].id);
    s.webhook_failed(due[1].id, std::nullopt);
    s.webhook_failed(due[2].id, t0 + 1h);
    EXPECT_EQ(payloads(s.due_webhooks(far, 10)), std::vector<std::string>{"pending"});
  }
  // All of it is durable.
  state_store s(file);
  EXPECT_EQ(s.webhook_cursor(), 3);
  EXPECT_EQ(payloads(s.due_webhooks(far, 10)), std::vector<std::string>{"pending"});
  EXPECT_EQ(s.due_webhooks(far, 10)[0].attempts, 1u);
}

}  // namespace
}  // namespace postern::store
