#include "completion_notice.hpp"

#include "plugins/policy_fixture.hpp"

namespace postern::policies {
namespace {

using ::testing::_;


class completion_notice_test : public postern::testing::policy_fixture {
 protected:
  postern::campaign_summary finished() const {
    postern::campaign_summary s;
    s.id = "C1";
    s.tenant = "shop";
    s.name = "Z launch";
    s.selected = 10;
    s.dropped = 2;
    s.queued = 8;
    s.delivered = 7;
    s.failed = 1;
    s.cost = 9;
    return s;
  }
};

TEST_F(completion_notice_test, mails_one_summary_to_the_tenants_notify_address_under_a_stable_key) {
  config_.set("notify.shop", "owner@shop.example");
  postern::new_message sent;
  EXPECT_CALL(host_, submit(_, _)).WillOnce([&](postern::new_message m, postern::submit_callback done) {
    sent = std::move(m);
    done({true, "Q1", {250, "2.0.0", "ok"}});
  });
  completion_notice policy(host_);
  policy.on_campaign_end(finished());
  EXPECT_EQ(sent.tenant, "shop");
  EXPECT_EQ(sent.origin_key, "campaign-end:C1") << "a second hand-over after a crash is the same message";
  ASSERT_EQ(sent.env.recipients.size(), 1u);
  EXPECT_EQ(sent.env.recipients[0].address, "owner@shop.example");
  EXPECT_EQ(sent.env.mail_from, "postern@gw.example");
  EXPECT_NE(sent.raw.find("Subject: Campaign \"Z launch\" finished: 7 delivered, 1 failed\r\n"), std::string::npos)
      << sent.raw;
  EXPECT_NE(sent.raw.find("Dropped by policies:       2\r\n"), std::string::npos);
  EXPECT_NE(sent.raw.find("Credits charged:           9\r\n"), std::string::npos);
}

TEST_F(completion_notice_test, says_cancelled_and_keeps_utf8_names_out_of_the_subject) {
  auto s = finished();
  s.was_cancelled = true;
  s.name = "Fête d'été";
  completion_notice policy(host_);
  const auto text = policy.compose(s, "owner@shop.example");
  EXPECT_NE(text.find("Subject: Campaign cancelled: 7 delivered, 1 failed\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("Campaign:    Fête d'été (C1)"), std::string::npos);
}

TEST_F(completion_notice_test, a_tenant_without_a_notify_address_gets_nothing) {
  EXPECT_CALL(host_, submit(_, _)).Times(0);
  completion_notice policy(host_);
  policy.on_campaign_end(finished());
}

}  // namespace
}  // namespace postern::policies
