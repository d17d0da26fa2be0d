#include "policies/chain.hpp"

#include "mocks/mock_policy.hpp"

#include <gtest/gtest.h>

namespace postern::policies {
namespace {

using postern::testing::mock_policy;
using ::testing::_;
using ::testing::Field;
using ::testing::Return;
using ::testing::Throw;

struct view_data {
  std::string tenant = "t", campaign, from = "s@example.com", raw;
  std::vector<std::string> tags;
  std::vector<postern::recipient> rcpts{{0, "a@example.com", "", 0}};
  postern::submission_view view() const {
    return {tenant, postern::mail_stream::marketing, tags, campaign, from, rcpts, raw, false};
  }
};

TEST(chain, runs_in_order_and_stops_at_the_first_refusal) {
  auto first = std::make_shared<mock_policy>();
  auto second = std::make_shared<mock_policy>();
  auto third = std::make_shared<mock_policy>();
  postern::verdict drop;
  drop.drops.push_back({0, "inactive"});
  drop.route = "mailgun";
  ::testing::InSequence order;
  EXPECT_CALL(*first, check(_, _)).WillOnce(Return(drop));
  EXPECT_CALL(*second, check(_, _)).WillOnce(Return(postern::verdict::defer(452, "4.5.3", "slow down")));
  EXPECT_CALL(*third, check(_, _)).Times(0);
  chain c({{"one", first}, {"two", second}, {"three", third}});
  view_data d;
  d.rcpts.push_back({1, "b@example.com", "", 0});  // someone is left after the drop
  auto r = c.evaluate(d.view(), postern::policy_stage::content);
  EXPECT_EQ(r.decision, postern::verdict::action::defer);
  EXPECT_EQ(r.decided_by, "two");
  EXPECT_EQ(r.reply.code, 452);
}

TEST(chain, combines_drops_headers_and_the_first_route) {
  auto first = std::make_shared<mock_policy>();
  auto second = std::make_shared<mock_policy>();
  postern::verdict a, b;
  a.drops.push_back({0, "unsubscribed"});
  a.route = "mailgun";
  b.add_headers.push_back({"X-A", "1"});
  b.route = "smtp";
  EXPECT_CALL(*first, check(_, _)).WillOnce(Return(a));
  EXPECT_CALL(*second, check(_, _)).WillOnce(Return(b));
  chain c({{"consent", first}, {"tagger", second}});
  view_data d;
  d.rcpts.push_back({1, "b@example.com", "", 0});  // someone is left after the drop
  auto r = c.evaluate(d.view(), postern::policy_stage::content);
  EXPECT_EQ(r.decision, postern::verdict::action::accept);
  ASSERT_EQ(r.drops.size(), 1u);
  EXPECT_EQ(r.drop_policies[0], "consent");
  EXPECT_EQ(r.add_headers.size(), 1u);
  EXPECT_EQ(r.route, "mailgun");
}

TEST(chain, a_throwing_policy_defers_instead_of_crashing) {
  auto p = std::make_shared<mock_policy>();
  EXPECT_CALL(*p, check(_, _)).WillOnce(Throw(std::runtime_error("database gone")));
  EXPECT_CALL(*p, on_outcome(Field(&postern::outcome_event::queue_id, "Q"))).WillOnce(Throw(std::runtime_error("x")));
  chain c({{"broken", p}});
  view_data d;
  auto r = c.evaluate(d.view(), postern::policy_stage::mail_from);
  EXPECT_EQ(r.decision, postern::verdict::action::defer);
  EXPECT_EQ(r.reply.code, 451);
  postern::outcome_event e;
  e.queue_id = "Q";
  EXPECT_NO_THROW(c.notify(e));
}

TEST(chain, sums_the_costs_of_the_policies_that_accept) {
  auto pricing = std::make_shared<mock_policy>();
  auto surcharge = std::make_shared<mock_policy>();
  postern::verdict three, two;
  three.cost = 3;
  two.cost = 2;
  EXPECT_CALL(*pricing, check(_, _)).WillOnce(Return(three));
  EXPECT_CALL(*surcharge, check(_, _)).WillOnce(Return(two));
  chain c({{"pricing", pricing}, {"surcharge", surcharge}});
  view_data d;
  EXPECT_EQ(c.evaluate(d.view(), postern::policy_stage::content).cost, 5);
}

TEST(chain, campaign_start_stops_at_the_first_refusal_and_a_throw_is_a_defer) {
  auto credits = std::make_shared<mock_policy>();
  auto later = std::make_shared<mock_policy>();
  postern::campaign_summary summary;
  summary.id = "C1";
  EXPECT_CALL(*credits, on_campaign_start(Field(&postern::campaign_summary::id, "C1")))
      .WillOnce(Return(postern::verdict::reject(550, "5.7.1", "no credits")))
      .WillOnce(Throw(std::runtime_error("disk")));
  EXPECT_CALL(*later, on_campaign_start(_)).Times(0);
  chain c({{"credits", credits}, {"later", later}});
  auto refused = c.campaign_start(summary);
  EXPECT_EQ(refused.decision, postern::verdict::action::reject);
  EXPECT_EQ(refused.decided_by, "credits");
  EXPECT_EQ(refused.reply.text, "no credits");
  auto thrown = c.campaign_start(summary);
  EXPECT_EQ(thrown.decision, postern::verdict::action::defer);
  EXPECT_EQ(thrown.reply.code, 451);
}

TEST(chain, campaign_end_reaches_every_policy_even_after_a_throw) {
  auto first = std::make_shared<mock_policy>();
  auto second = std::make_shared<mock_policy>();
  EXPECT_CALL(*first, on_campaign_end(_)).WillOnce(Throw(std::runtime_error("boom")));
  EXPECT_CALL(*second, on_campaign_end(_)).Times(1);
  chain c({{"first", first}, {"second", second}});
  c.campaign_end(postern::campaign_summary{});
}

TEST(chain, ends_once_every_recipient_is_dropped) {
  auto consent = std::make_shared<mock_policy>();
  auto counter = std::make_shared<mock_policy>();
  postern::verdict drop;
  drop.drops.push_back({0, "unsubscribed"});
  EXPECT_CALL(*consent, check(_, _)).WillOnce(Return(drop));
  EXPECT_CALL(*counter, check(_, _)).Times(0);
  chain c({{"consent", consent}, {"frequency_cap", counter}});
  view_data d;
  const auto r = c.evaluate(d.view(), postern::policy_stage::content);
  EXPECT_EQ(r.decision, postern::verdict::action::accept);
  ASSERT_EQ(r.drop_policies.size(), 1u);
  EXPECT_EQ(r.drop_policies[0], "consent");
}

}  // namespace
}  // namespace postern::policies
