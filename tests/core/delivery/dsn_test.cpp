#include "delivery/dsn.hpp"

#include "submission/header_block.hpp"

#include <gtest/gtest.h>

namespace postern::delivery {
namespace {

postern::message original(postern::dsn_ret ret = postern::dsn_ret::unspecified) {
  postern::message m;
  m.queue_id = "ORIGINALQUEUEID0";
  m.env.mail_from = "shop@example.com";
  m.env.envid = "order-42";
  m.env.ret = ret;
  m.raw = "Subject: Your order\r\nFrom: shop@example.com\r\n\r\nSECRET BODY\r\n";
  m.arrival = std::chrono::system_clock::now();
  return m;
}

TEST(dsn, is_a_multipart_report_per_rfc3464) {
  std::vector<dsn_recipient> r{{{0, "gone@example.net", "rfc822;Gone@example.net", 0}, "failed",
                                {550, "5.1.1", "no such user"}, "smtp"}};
  const auto text = build_dsn(original(), r, "gw.example", std::chrono::system_clock::now(), "DSNQUEUEID000000");
  EXPECT_EQ(submission::header_values(text, "To").front(), "<shop@example.com>");
  EXPECT_EQ(submission::header_values(text, "Auto-Submitted").front(), "auto-replied");
  EXPECT_NE(submission::header_values(text, "Content-Type").front().find("multipart/report; report-type=delivery-status"),
            std::string::npos);
  for (const char* expected : {"Content-Type: message/delivery-status", "Reporting-MTA: dns; gw.example",
                               "Original-Envelope-Id: order-42", "Original-Recipient: rfc822;Gone@example.net",
                               "Final-Recipient: rfc822; gone@example.net", "Action: failed", "Status: 5.1.1",
                               "Diagnostic-Code: smtp; 550 5.1.1 no such user", "Content-Type: text/rfc822-headers",
                               "Subject: Your order"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  }
  EXPECT_EQ(text.find("SECRET BODY"), std::string::npos) << "without RET=FULL only the headers go back";
  const std::string boundary = "DSNQUEUEID000000/gw.example";
  EXPECT_NE(text.find("\r\n--" + boundary + "--\r\n"), std::string::npos);
}

TEST(dsn, ret_full_returns_the_whole_message) {
  std::vector<dsn_recipient> r{{{0, "a@example.net", "", 0}, "failed", {550, "5.7.1", "spam"}, ""}};
  const auto text = build_dsn(original(postern::dsn_ret::full), r, "gw", std::chrono::system_clock::now(), "Q");
  EXPECT_NE(text.find("Content-Type: message/rfc822"), std::string::npos);
  EXPECT_NE(text.find("SECRET BODY"), std::string::npos);
}

TEST(dsn, notify_decides_which_reports_are_wanted) {
  postern::recipient plain{0, "a@x", "", postern::notify_default};
  postern::recipient never{0, "a@x", "", postern::notify_never};
  postern::recipient success{0, "a@x", "", postern::notify_success};
  postern::recipient both{0, "a@x", "", postern::notify_success | postern::notify_failure};
  EXPECT_TRUE(wants_report(plain, "failed"));
  EXPECT_FALSE(wants_report(plain, "delivered"));
  EXPECT_FALSE(wants_report(never, "failed"));
  EXPECT_FALSE(wants_report(success, "failed"));
  EXPECT_TRUE(wants_report(success, "delivered"));
  EXPECT_TRUE(wants_report(both, "failed"));
  EXPECT_TRUE(wants_report(both, "delivered"));
}

}  // namespace
}  // namespace postern::delivery
