#include "activity_window.hpp"

#include "plugins/policy_fixture.hpp"

namespace postern::policies {
namespace {

using ::testing::_;
using ::testing::Return;

class activity_window_test : public postern::testing::policy_fixture {
 protected:
  postern::verdict check(int days_ago, postern::mail_stream stream = postern::mail_stream::marketing) {
    postern::contact_facts f;
    f.last_interaction = now_ - std::chrono::hours(24 * days_ago);
    campaign_view v("ann@example.com", f);
    v.stream = stream;
    activity_window policy(host_);
    return policy.check(v.view(), postern::policy_stage::content);
  }
};

TEST_F(activity_window_test, drops_contacts_inactive_for_longer_than_the_window) {
  EXPECT_TRUE(check(364).drops.empty());
  const auto v = check(366);
  ASSERT_EQ(v.drops.size(), 1u);
  EXPECT_EQ(v.drops[0].reason, "inactive for more than 365 days");
  EXPECT_TRUE(check(366, postern::mail_stream::transactional).drops.empty()) << "transactional mail is not touched";
}

TEST_F(activity_window_test, the_window_is_configurable_and_checked) {
  config_.set("days", 30);
  EXPECT_EQ(check(31).drops.size(), 1u);
  config_.set("days", 0);
  EXPECT_THROW(activity_window{host_}, std::runtime_error);
}

TEST_F(activity_window_test, a_lifted_route_lets_inactive_contacts_through) {
  config_.set_list("lifted_routes", {"shop-mailgun"});
  EXPECT_CALL(host_, route_of(_, std::string_view("ann@example.com"))).WillOnce(Return("shop-mailgun")).WillOnce(Return("default"));
  EXPECT_TRUE(check(900).drops.empty());
  EXPECT_EQ(check(900).drops.size(), 1u);
}

}  // namespace
}  // namespace postern::policies
