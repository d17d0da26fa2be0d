#include "submission/service.hpp"

#include "mocks/mock_policy.hpp"
#include "submission/header_block.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace postern::submission {
namespace {

using postern::testing::mock_policy;
using postern::testing::temp_dir;
using ::testing::_;
using ::testing::Return;

request make_request(std::string raw, std::vector<std::string> rcpts = {"ann@example.com"}) {
  request r;
  r.tenant = "shop";
  r.env.mail_from = "orders@shop.example";
  for (auto& a : rcpts) r.env.recipients.push_back({0, std::move(a), "", 0});
  r.raw = std::move(raw);
  r.trace.protocol = "ESMTP";
  r.trace.helo = "client.example";
  r.trace.client_address = "127.0.0.1";
  return r;
}

class submission_service : public ::testing::Test {
 protected:
  temp_dir dir_;
  spool::spool spool_{{dir_.path()}};
  policies::chain no_policies_;
  service service_{spool_, no_policies_, {"gw.example"}};
};

TEST_F(submission_service, adds_missing_required_fields_and_a_received_trace) {
  auto r = service_.submit_wait(make_request("Subject: hi\n\nbody\n"));
  ASSERT_TRUE(r.accepted) << r.reply.text;
  EXPECT_EQ(r.reply.code, 250);
  EXPECT_NE(r.reply.text.find(r.queue_id), std::string::npos);
  const auto raw = spool_.load(r.queue_id)->msg->raw;
  EXPECT_TRUE(raw.starts_with("Received: from client.example (unknown [127.0.0.1])")) << raw;
  auto received = header_values(raw, "Received").front();
  std::replace(received.begin(), received.end(), '\t', ' ');
  EXPECT_NE(received.find("by gw.example (postern) with ESMTP id " + r.queue_id + " for <ann@example.com>; "),
            std::string::npos) << received;
  EXPECT_EQ(header_values(raw, "Message-ID").front(), "<" + r.queue_id + "@gw.example>");
  EXPECT_EQ(header_values(raw, "From").front(), "<orders@shop.example>");
  EXPECT_EQ(header_values(raw, "Date").size(), 1u);
  EXPECT_TRUE(raw.ends_with("\r\n\r\nbody\r\n")) << "line endings become CRLF";
}

TEST_F(submission_service, keeps_fields_the_client_gave) {
  auto r = service_.submit_wait(make_request(
      "Date: Mon, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <mine@app>\r\nFrom: App <app@example.com>\r\n\r\nx\r\n"));
  ASSERT_TRUE(r.accepted);
  const auto raw = spool_.load(r.queue_id)->msg->raw;
  EXPECT_EQ(header_values(raw, "Message-ID"), std::vector<std::string>{"<mine@app>"});
  EXPECT_EQ(header_values(raw, "Date"), std::vector<std::string>{"Mon, 1 Jan 2026 00:00:00 +0000"});
  EXPECT_EQ(header_values(raw, "From"), std::vector<std::string>{"App <app@example.com>"});
}

TEST_F(submission_service, a_headerless_text_becomes_a_body) {
  auto r = service_.submit_wait(make_request("just text, no headers\n"));
  ASSERT_TRUE(r.accepted);
  const auto raw = spool_.load(r.queue_id)->msg->raw;
  EXPECT_NE(raw.find("\r\n\r\njust text, no headers\r\n"), std::string::npos) << raw;
}

TEST_F(submission_service, several_recipients_are_not_named_in_received) {
  auto r = service_.submit_wait(make_request("Subject: x\r\n\r\ny\r\n", {"a@example.com", "b@example.com"}));
  ASSERT_TRUE(r.accepted);
  const auto raw = spool_.load(r.queue_id)->msg->raw;
  EXPECT_EQ(header_values(raw, "Received").front().find(" for "), std::string::npos);
  EXPECT_EQ(spool_.load(r.queue_id)->recipients[1].rcpt.index, 1u);
}

TEST_F(submission_service, refuses_bad_envelopes_with_smtp_codes) {
  auto none = service_.submit_wait(make_request("x", {}));
  EXPECT_FALSE(none.accepted);
  EXPECT_EQ(none.reply.code, 554);
  auto bad_rcpt = service_.submit_wait(make_request("x", {"not an address"}));
  EXPECT_EQ(bad_rcpt.reply.code, 553);
  EXPECT_EQ(bad_rcpt.reply.enhanced, "5.1.3");
  auto req = make_request("x");
  req.env.mail_from = "bad<sender>@x";
  EXPECT_EQ(service_.submit_wait(req).reply.enhanced, "5.1.7");
  EXPECT_TRUE(spool_.pending().empty());
}

TEST(submission_limits, every_way_in_meets_the_size_limit) {
  temp_dir dir;
  spool::spool spool({dir.path()});
  policies::chain chain;
  service svc(spool, chain, {"gw", 1024});
  auto r = svc.submit_wait(make_request("Subject: big\r\n\r\n" + std::string(2000, 'x') + "\r\n"));
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.reply.code, 552);
  EXPECT_EQ(r.reply.enhanced, "5.3.4");
  EXPECT_TRUE(spool.pending().empty());
  EXPECT_TRUE(svc.submit_wait(make_request("Subject: small\r\n\r\nx\r\n")).accepted);
}

TEST(valid_address, accepts_mail_addresses_only) {
  EXPECT_TRUE(valid_address("a@example.com"));
  EXPECT_TRUE(valid_address("\xc3\xa9l\xc3\xa8ve@\xc3\xa9" "cole.example"));  // RFC 6531
  EXPECT_FALSE(valid_address(""));
  EXPECT_FALSE(valid_address("a"));
  EXPECT_FALSE(valid_address("@example.com"));
  EXPECT_FALSE(valid_address("a@"));
  EXPECT_FALSE(valid_address("a b@example.com"));
  EXPECT_FALSE(valid_address("<a@example.com>"));
  EXPECT_FALSE(valid_address("a@example..com"));
  EXPECT_FALSE(valid_address(std::string(250, 'a') + "@example.com"));
}

TEST(submission_policies, a_refusal_reaches_the_client_as_given_and_nothing_is_spooled) {
  temp_dir dir;
  spool::spool spool({dir.path()});
  auto p = std::make_shared<mock_policy>();
  EXPECT_CALL(*p, check(_, postern::policy_stage::content))
      .WillOnce(Return(postern::verdict::reject(550, "5.7.1", "Links to other sites are not allowed")));
  policies::chain chain({{"link_guard", p}});
  service svc(spool, chain, {"gw"});
  auto r = svc.submit_wait(make_request("Subject: x\r\n\r\ny\r\n"));
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.reply.code, 550);
  EXPECT_EQ(r.reply.enhanced, "5.7.1");
  EXPECT_EQ(r.reply.text, "Links to other sites are not allowed");
  EXPECT_TRUE(spool.pending().empty());
}

TEST(submission_policies, drops_and_headers_are_applied) {
  temp_dir dir;
  spool::spool spool({dir.path()});
  auto p = std::make_shared<mock_policy>();
  postern::verdict v;
  v.drops.push_back({1, "unsubscribed"});
  v.add_headers.push_back({"List-Unsubscribe", "<https://gw/u/1>"});
  EXPECT_CALL(*p, check(_, postern::policy_stage::content)).WillOnce(Return(v));
  policies::chain chain({{"consent", p}});
  service svc(spool, chain, {"gw"});
  auto r = svc.submit_wait(make_request("Subject: x\r\n\r\ny\r\n", {"a@example.com", "b@example.com"}));
  ASSERT_TRUE(r.accepted);
  auto m = spool.load(r.queue_id);
  ASSERT_EQ(m->recipients.size(), 1u);
  EXPECT_EQ(m->recipients[0].rcpt.address, "a@example.com");
  EXPECT_EQ(header_values(m->msg->raw, "List-Unsubscribe"), std::vector<std::string>{"<https://gw/u/1>"});
}

}  // namespace
}  // namespace postern::submission
