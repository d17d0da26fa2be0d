#include "no_resend.hpp"

#include "plugins/policy_fixture.hpp"

namespace postern::policies {
namespace {

class no_resend_test : public postern::testing::policy_fixture {
 protected:
  postern::campaign_summary started(const postern::campaign_info& info, std::string id) {
    postern::campaign_summary s;
    s.id = std::move(id);
    s.tenant = "shop";
    s.name = info.name;
    s.info = &info;
    return s;
  }
};

TEST_F(no_resend_test, refuses_a_campaign_already_sent_naming_it_and_resend_overrides) {
  no_resend policy(host_);
  campaign_view v("", {});
  v.rcpts.clear();
  EXPECT_EQ(policy.check(v.view(), postern::policy_stage::campaign).decision, postern::verdict::action::accept);
  ASSERT_EQ(policy.on_campaign_start(started(v.info, "C1")).decision, postern::verdict::action::accept);

  const auto again = policy.check(v.view(), postern::policy_stage::campaign);
  EXPECT_EQ(again.decision, postern::verdict::action::reject);
  EXPECT_EQ(again.reply.code, 550);
  EXPECT_NE(again.reply.text.find("\"Z launch\" (C1)"), std::string::npos) << again.reply.text;

  v.info.resend = true;
  EXPECT_EQ(policy.check(v.view(), postern::policy_stage::campaign).decision, postern::verdict::action::accept);
  policy.on_campaign_start(started(v.info, "C2"));
  EXPECT_EQ(data_.get("resend:C2"), "C1") << "the override is recorded";

  v.info.resend = false;
  EXPECT_NE(policy.check(v.view(), postern::policy_stage::campaign).reply.text.find("(C2)"), std::string::npos)
      << "the latest sending is named";
  v.info.fingerprint = "another";
  EXPECT_EQ(policy.check(v.view(), postern::policy_stage::campaign).decision, postern::verdict::action::accept);
  v.info.fingerprint = "fp1";
  v.tenant = "other";
  EXPECT_EQ(policy.check(v.view(), postern::policy_stage::campaign).decision, postern::verdict::action::accept)
      << "fingerprints are per tenant";
}

TEST_F(no_resend_test, of_two_identical_campaigns_started_at_once_only_the_first_starts) {
  no_resend policy(host_);
  campaign_view v("", {});
  // Both passed the campaign stage before either started (a double click).
  ASSERT_EQ(policy.check(v.view(), postern::policy_stage::campaign).decision, postern::verdict::action::accept);
  EXPECT_EQ(policy.on_campaign_start(started(v.info, "C1")).decision, postern::verdict::action::accept);
  const auto second = policy.on_campaign_start(started(v.info, "C2"));
  EXPECT_EQ(second.decision, postern::verdict::action::reject);
  EXPECT_NE(second.reply.text.find("C1"), std::string::npos) << second.reply.text;
}

}  // namespace
}  // namespace postern::policies
