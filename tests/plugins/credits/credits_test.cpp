#include "credits.hpp"

#include "plugins/policy_fixture.hpp"

namespace postern::policies {
namespace {

class credits_test : public postern::testing::policy_fixture {
 protected:
  std::int64_t cost_of(postern::contact_facts f) {
    campaign_view v("ann@example.com", f);
    credits policy(host_);
    return policy.check(v.view(), postern::policy_stage::content).cost;
  }
  postern::verdict start(std::int64_t cost) {
    postern::campaign_summary s;
    s.id = "C1";
    s.tenant = "shop";
    s.cost = cost;
    credits policy(host_);
    return policy.on_campaign_start(s);
  }
};

TEST_F(credits_test, prospects_cost_three_and_buyers_nothing_by_default) {
  postern::contact_facts buyer, prospect, signup;
  buyer.buyer = true;
  buyer.prospect = true;  // a buyer with something else in the cart is still a buyer
  prospect.prospect = true;
  EXPECT_EQ(cost_of(buyer), 0);
  EXPECT_EQ(cost_of(prospect), 3);
  EXPECT_EQ(cost_of(signup), 0);
  config_.set("prospect_cost", 5);
  config_.set("other_cost", 1);
  EXPECT_EQ(cost_of(prospect), 5);
  EXPECT_EQ(cost_of(signup), 1);
  config_.set("buyer_cost", -1);
  EXPECT_THROW(credits{host_}, std::runtime_error);
}

TEST_F(credits_test, a_campaign_is_paid_whole_or_refused_with_the_balance) {
  config_.set("grants.shop", 10);
  EXPECT_EQ(start(6).decision, postern::verdict::action::accept);
  const auto refused = start(6);
  EXPECT_EQ(refused.decision, postern::verdict::action::reject);
  EXPECT_EQ(refused.reply.text, "Campaign costs 6 credits; tenant shop has 4 left");
  EXPECT_EQ(data_.get("spent:shop"), "6") << "a refusal takes nothing";
  EXPECT_EQ(start(0).decision, postern::verdict::action::accept) << "free campaigns need no grant";
  config_.set("grants.shop", 20);
  EXPECT_EQ(start(6).decision, postern::verdict::action::accept) << "a raised grant tops the balance up";
}

TEST_F(credits_test, what_was_charged_for_recipients_never_sent_comes_back_once) {
  config_.set("grants.shop", 10);
  ASSERT_EQ(start(9).decision, postern::verdict::action::accept);
  postern::campaign_summary end;
  end.id = "C1";
  end.tenant = "shop";
  end.cost = 9;
  end.unsent_cost = 6;
  credits policy(host_);
  policy.on_campaign_end(end);
  policy.on_campaign_end(end);  // called again after a crash: no second refund
  EXPECT_EQ(data_.get("spent:shop"), "3");
}

}  // namespace
}  // namespace postern::policies
