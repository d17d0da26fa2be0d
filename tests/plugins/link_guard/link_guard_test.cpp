#include "link_guard.hpp"

#include "plugins/policy_fixture.hpp"

#include <postern/setting_text.hpp>

namespace postern::policies {
namespace {

class link_guard_test : public postern::testing::policy_fixture {
 protected:
  postern::verdict check(std::string raw, postern::policy_stage stage = postern::policy_stage::campaign) {
    campaign_view v("", {});
    v.rcpts.clear();
    v.facts.clear();
    v.raw = std::move(raw);
    link_guard policy(host_);
    return policy.check(v.view(stage == postern::policy_stage::campaign), stage);
  }
};

TEST_F(link_guard_test, reads_links_from_decoded_parts) {
  const link_guard guard(host_);
  const std::string qp =
      "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
      "<a href=3D\"https://evil.exam=\r\nple/x\">x</a> and https://shop.example/y.\r\n";
  EXPECT_EQ(guard.links_in(qp), (std::vector<std::string>{"https://evil.example/x", "https://shop.example/y"}));
  const std::string b64 = "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                          "c2VlIGh0dHA6Ly9iaXQubHkvYWJj\r\n";  // "see http://bit.ly/abc"
  EXPECT_EQ(guard.links_in(b64), (std::vector<std::string>{"http://bit.ly/abc"}));
}

TEST_F(link_guard_test, reads_links_as_a_browser_would) {
  const link_guard guard(host_);
  const std::string html = "Content-Type: text/html\r\n\r\n"
                           "<a href=\"https://evil.test\\@shop.example/\">a</a>"
                           "<a href=\"https&#58;//entity.test/\">b</a>"
                           "<a href=\"https:\\\\slashes.test/\">c</a>"
                           "<a href=\"//relative.test/x\">d</a>\r\n";
  EXPECT_EQ(guard.links_in(html), (std::vector<std::string>{"https://evil.test/@shop.example/", "https://entity.test/",
                                                            "https://slashes.test/", "//relative.test/x"}));
  config_.set_list("allowed.shop", {"shop.example"});
  const auto v = check(html);
  EXPECT_EQ(v.decision, postern::verdict::action::reject);
  for (const char* host : {"evil.test", "entity.test", "slashes.test", "relative.test"})
    EXPECT_NE(v.reply.text.find(host), std::string::npos) << host << ": " << v.reply.text;
}

TEST_F(link_guard_test, allows_the_tenants_domains_and_their_subdomains_only) {
  config_.set_list("allowed.shop", {"shop.example"});
  EXPECT_EQ(check("Subject: a\r\n\r\nhttps://www.shop.example/a https://shop.example\r\n").decision,
            postern::verdict::action::accept);
  const auto v = check("Subject: a\r\n\r\nhttps://shop.example.evil.test/a http://user@evil.example:80/b\r\n");
  EXPECT_EQ(v.decision, postern::verdict::action::reject);
  EXPECT_EQ(v.reply.text,
            "Links outside the allowed domains: https://shop.example.evil.test/a, http://user@evil.example:80/b");
}

TEST_F(link_guard_test, the_sender_domain_is_allowed_unless_switched_off) {
  EXPECT_EQ(check("Subject: a\r\n\r\nhttps://news.shop.example/\r\n").decision, postern::verdict::action::accept);
  config_.set("allow_sender_domain", false);
  EXPECT_EQ(check("Subject: a\r\n\r\nhttps://news.shop.example/\r\n").decision, postern::verdict::action::reject);
}

TEST_F(link_guard_test, lists_its_settings_as_toml_values) {
  using settings = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(link_guard(host_).settings(),
            (settings{{"allow_sender_domain", "true"}, {"allowed_everywhere", "[]"}}));
  config_.set("allow_sender_domain", false);
  config_.set_list("allowed_everywhere", {"cdn.example", "Say \"hi\".example"});
  EXPECT_EQ(link_guard(host_).settings(),
            (settings{{"allow_sender_domain", "false"}, {"allowed_everywhere", R"(["cdn.example", "say \"hi\".example"])"}}));
}

TEST_F(link_guard_test, campaign_messages_are_read_once_at_the_campaign_stage) {
  campaign_view v("ann@example.com", {});
  v.raw = "Subject: a\r\n\r\nhttps://evil.example/\r\n";
  link_guard policy(host_);
  EXPECT_EQ(policy.check(v.view(true), postern::policy_stage::content).decision, postern::verdict::action::accept);
  EXPECT_EQ(policy.check(v.view(false), postern::policy_stage::content).decision, postern::verdict::action::reject)
      << "a single marketing message is read when it is submitted";
  v.stream = postern::mail_stream::transactional;
  EXPECT_EQ(policy.check(v.view(false), postern::policy_stage::content).decision, postern::verdict::action::accept);
}

TEST(setting_text, escapes_quotes_backslashes_and_control_characters_as_toml_does) {
  EXPECT_EQ(postern::setting_text("a\nb\\"), R"("a\u000Ab\\")");
  EXPECT_EQ(postern::setting_text(std::string_view("\x01\x7F\t", 3)), R"("\u0001\u007F\u0009")");
  EXPECT_EQ(postern::setting_text(std::vector<std::string>{}), "[]");
}

}  // namespace
}  // namespace postern::policies
