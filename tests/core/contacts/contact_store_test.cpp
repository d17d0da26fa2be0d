#include "contacts/contact_store.hpp"

#include "spool/sqlite.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <map>

namespace postern::contacts {
namespace {

using postern::testing::temp_dir;

std::map<std::string, std::pair<bool, bool>> buyers_and_prospects(contact_store& store) {
  std::map<std::string, std::pair<bool, bool>> out;
  store.select("shop", {}, std::chrono::system_clock::now(),
               [&](selected_contact& c) { out[c.person.email] = {c.buyer, c.prospect}; });
  return out;
}

activity event(std::string email, activity_kind kind, std::vector<std::string> products) {
  return {std::move(email), kind, std::move(products), "", std::chrono::system_clock::now()};
}

TEST(contact_store, buyer_and_prospect_follow_the_activity) {
  temp_dir dir;
  contact_store store(dir / "contacts.db");
  const auto now = std::chrono::system_clock::now();
  store.record("shop", {event("ann@example.com", activity_kind::cart, {"Z"}),
                        event("bob@example.com", activity_kind::order, {"X"}),
                        event("bob@example.com", activity_kind::wishlist, {"X"})}, now);
  auto facts = buyers_and_prospects(store);
  EXPECT_EQ(facts["ann@example.com"], std::make_pair(false, true));
  EXPECT_EQ(facts["bob@example.com"], std::make_pair(true, false)) << "wished for what he bought";
  store.record("shop", {event("ann@example.com", activity_kind::order, {"Z"})}, now);
  EXPECT_EQ(buyers_and_prospects(store)["ann@example.com"], std::make_pair(true, false));
  audience_rule prospects;
  prospects.prospects = true;
  EXPECT_EQ(store.preview("shop", prospects, now, 10).count, 0u);
}

TEST(contact_store, a_database_from_before_the_derived_facts_gets_them) {
  temp_dir dir;
  {
    // The schema of version 0: contacts without buyer and prospect.
    spool::database old(dir / "contacts.db", false);
    old.exec(R"sql(
      CREATE TABLE contacts(id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, email TEXT NOT NULL,
        first_name TEXT NOT NULL DEFAULT '', last_name TEXT NOT NULL DEFAULT '',
        contact_allowed INTEGER NOT NULL DEFAULT 1, show_name INTEGER NOT NULL DEFAULT 1,
        show_address INTEGER NOT NULL DEFAULT 1, unsubscribed INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL, last_interaction INTEGER NOT NULL, UNIQUE(tenant, email));
      CREATE TABLE activity(id INTEGER PRIMARY KEY, contact_id INTEGER NOT NULL, kind INTEGER NOT NULL,
        product TEXT NOT NULL, order_id TEXT, time INTEGER NOT NULL);
      INSERT INTO contacts(id, tenant, email, created, last_interaction) VALUES(1, 'shop', 'ann@example.com', 0, 0);
      INSERT INTO contacts(id, tenant, email, created, last_interaction) VALUES(2, 'shop', 'dora@example.com', 0, 0);
      INSERT INTO activity(contact_id, kind, product, time) VALUES(1, 0, 'X', 0);
      INSERT INTO activity(contact_id, kind, product, time) VALUES(2, 1, 'X', 0);
    )sql");
  }
  contact_store store(dir / "contacts.db");
  auto facts = buyers_and_prospects(store);
  EXPECT_EQ(facts["ann@example.com"], std::make_pair(true, false));
  EXPECT_EQ(facts["dora@example.com"], std::make_pair(false, true));
}

}  // namespace
}  // namespace postern::contacts
