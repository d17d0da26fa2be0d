#include "campaign_pacing.hpp"

#include "plugins/policy_fixture.hpp"

#include <thread>

namespace postern::policies {
namespace {

class campaign_pacing_test : public postern::testing::policy_fixture {
 protected:
  postern::verdict::action check(campaign_pacing& p, const std::string& campaign, bool dry_run = false) {
    campaign_view v("ann@example.com", {});
    v.info.id = campaign;
    v.dry_run = dry_run;
    return p.check(v.view(), postern::policy_stage::content).decision;
  }
};

TEST_F(campaign_pacing_test, a_campaign_gets_its_burst_then_waits_for_tokens) {
  config_.set("per_second", 20);
  config_.set("burst", 2);
  campaign_pacing pacing(host_);
  EXPECT_EQ(check(pacing, "C1"), postern::verdict::action::accept);
  EXPECT_EQ(check(pacing, "C1"), postern::verdict::action::accept);
  EXPECT_EQ(check(pacing, "C1"), postern::verdict::action::defer);
  EXPECT_EQ(check(pacing, "C2"), postern::verdict::action::accept) << "each campaign has its own rate";
  EXPECT_EQ(check(pacing, "C1", true), postern::verdict::action::accept) << "reports are never paced";
  std::this_thread::sleep_for(std::chrono::milliseconds(120));  // 20/s: more than two tokens back
  EXPECT_EQ(check(pacing, "C1"), postern::verdict::action::accept);
}

TEST_F(campaign_pacing_test, bad_settings_are_refused) {
  config_.set("per_second", 1);
  config_.set("per_minute", 60);
  EXPECT_THROW(campaign_pacing{host_}, std::runtime_error);
  config_.erase("per_minute");
  config_.set("per_second", 0);
  EXPECT_THROW(campaign_pacing{host_}, std::runtime_error);
}

}  // namespace
}  // namespace postern::policies
