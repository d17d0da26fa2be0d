#include "consent.hpp"

#include "plugins/policy_fixture.hpp"

namespace postern::policies {
namespace {

using ::testing::_;
using ::testing::Return;

class consent_test : public postern::testing::policy_fixture {
 protected:
  postern::verdict check(postern::contact_facts facts, const std::string& list = "news") {
    campaign_view v("ann@example.com", std::move(facts));
    v.info.list = list;
    consent policy(host_);
    return policy.check(v.view(), postern::policy_stage::content);
  }
};

TEST_F(consent_test, drops_who_refused_contact_or_unsubscribed_and_says_why) {
  postern::contact_facts refused;
  refused.contact_allowed = false;
  postern::contact_facts everything;
  everything.unsubscribed = true;
  postern::contact_facts left;
  left.left_lists = {"news"};
  for (auto [facts, reason] : {std::pair{refused, "contact not allowed"}, std::pair{everything, "unsubscribed"},
                               std::pair{left, "unsubscribed from list news"}}) {
    const auto v = check(facts);
    ASSERT_EQ(v.drops.size(), 1u) << reason;
    EXPECT_EQ(v.drops[0].reason, reason);
    EXPECT_TRUE(v.add_headers.empty());
  }
  EXPECT_TRUE(check(left, "offers").drops.empty()) << "left another list only";
}

TEST_F(consent_test, adds_one_click_unsubscribe_with_the_gateways_signed_link) {
  EXPECT_CALL(host_, unsubscribe_url(std::string_view("shop"), std::string_view("ann@example.com"),
                                     std::string_view("news"), std::string_view("C1")))
      .WillOnce(Return("https://mail.example/unsubscribe/t.s"));
  config_.set("mailto", "leave@shop.example");
  const auto v = check(postern::contact_facts{});
  EXPECT_TRUE(v.drops.empty());
  ASSERT_EQ(v.add_headers.size(), 2u);
  EXPECT_EQ(v.add_headers[0].name, "List-Unsubscribe");
  EXPECT_EQ(v.add_headers[0].value, "<https://mail.example/unsubscribe/t.s>, <mailto:leave@shop.example>");
  EXPECT_EQ(v.add_headers[1].value, "List-Unsubscribe=One-Click");
}

TEST_F(consent_test, leaves_mail_outside_campaigns_alone) {
  campaign_view v("ann@example.com", {});
  v.facts[0].unsubscribed = true;
  consent policy(host_);
  const auto verdict = policy.check(v.view(false), postern::policy_stage::content);
  EXPECT_TRUE(verdict.drops.empty());
  EXPECT_TRUE(verdict.add_headers.empty());
}

}  // namespace
}  // namespace postern::policies
