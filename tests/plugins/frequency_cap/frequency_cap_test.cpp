#include "frequency_cap.hpp"

#include "plugins/policy_fixture.hpp"

namespace postern::policies {
namespace {

class frequency_cap_test : public postern::testing::policy_fixture {
 protected:
  std::size_t drops(frequency_cap& policy, const std::string& address, bool dry_run = false,
                    postern::mail_stream stream = postern::mail_stream::marketing) {
    campaign_view v(address, {});
    v.dry_run = dry_run;
    v.stream = stream;
    return policy.check(v.view(false), postern::policy_stage::content).drops.size();
  }
};

TEST_F(frequency_cap_test, at_most_max_per_window_and_a_report_takes_none) {
  config_.set("max", 2);
  config_.set("window", "7d");
  frequency_cap policy(host_);
  EXPECT_EQ(drops(policy, "ann@example.com", true), 0u);
  EXPECT_EQ(drops(policy, "ann@example.com"), 0u);
  EXPECT_EQ(drops(policy, "Ann@Example.com"), 0u) << "the same person, whatever the case";
  EXPECT_EQ(drops(policy, "ann@example.com", true), 1u) << "the report sees the cap reached";
  EXPECT_EQ(drops(policy, "ann@example.com"), 1u);
  EXPECT_EQ(drops(policy, "bob@example.com"), 0u);
  EXPECT_EQ(drops(policy, "ann@example.com", false, postern::mail_stream::transactional), 0u);
  now_ += std::chrono::hours(24 * 7);
  EXPECT_EQ(drops(policy, "ann@example.com"), 0u) << "a new window";
}

TEST_F(frequency_cap_test, bad_settings_are_refused) {
  config_.set("window", "soon");
  EXPECT_THROW(frequency_cap{host_}, std::runtime_error);
  config_.set("window", "7d");
  config_.set("max", 0);
  EXPECT_THROW(frequency_cap{host_}, std::runtime_error);
}

}  // namespace
}  // namespace postern::policies
