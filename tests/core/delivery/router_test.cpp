#include "delivery/router.hpp"

#include "mocks/mock_transport.hpp"

#include <gtest/gtest.h>

namespace postern::delivery {
namespace {

using postern::testing::mock_transport;

plugin_host::transport_entry entry(std::string name, bool available, bool in_default = true) {
  plugin_host::transport_entry e;
  e.name = std::move(name);
  e.impl = std::make_shared<mock_transport>();
  e.probe = {available, available ? "" : "down"};
  e.in_default = in_default;
  return e;
}

postern::message message(postern::mail_stream stream = postern::mail_stream::transactional, std::string tenant = "shop",
                         std::vector<std::string> tags = {}) {
  postern::message m;
  m.tenant = std::move(tenant);
  m.stream = stream;
  m.tags = std::move(tags);
  m.env.mail_from = "orders@Shop.Example";
  return m;
}

config::route_settings rule(std::string name, std::vector<std::string> transports) {
  config::route_settings r;
  r.name = std::move(name);
  r.transports = std::move(transports);
  return r;
}

class router_test : public ::testing::Test {
 protected:
  router_test() {
    std::vector<plugin_host::transport_entry> entries;
    entries.push_back(entry("smtp", true));
    entries.push_back(entry("file", true));
    entries.push_back(entry("mailgun", false, false));
    entries.push_back(entry("scripted", true, false));
    transports_ = std::make_unique<plugin_host::transport_set>(std::move(entries));
  }
  std::string via(const router& r, const postern::message& m, std::string_view rcpt) {
    const auto d = r.route(m, rcpt);
    return d.transport ? d.route + ":" + d.transport->name : d.route + ": none (" + d.reason + ")";
  }
  std::unique_ptr<plugin_host::transport_set> transports_;
};

TEST_F(router_test, without_rules_the_first_available_default_transport_serves) {
  router r({}, *transports_);
  EXPECT_EQ(via(r, message(), "a@example.com"), "default:smtp");
}

TEST_F(router_test, matchers_all_have_to_match_case_insensitively) {
  auto marketing = rule("campaigns", {"scripted"});
  marketing.streams = {"marketing"};
  marketing.tenants = {"SHOP"};
  marketing.sender_domains = {"shop.example"};
  marketing.tags = {"newsletter"};
  router r({marketing}, *transports_);
  EXPECT_EQ(via(r, message(postern::mail_stream::marketing, "shop", {"x", "Newsletter"}), "a@example.com"),
            "campaigns:scripted");
  EXPECT_EQ(via(r, message(postern::mail_stream::marketing, "shop", {"x"}), "a@example.com"), "default:smtp")
      << "no matching tag";
  EXPECT_EQ(via(r, message(postern::mail_stream::transactional, "shop", {"newsletter"}), "a@example.com"),
            "default:smtp");
  EXPECT_EQ(via(r, message(postern::mail_stream::marketing, "other", {"newsletter"}), "a@example.com"),
            "default:smtp");
}

TEST_F(router_test, recipient_domains_route_each_recipient) {
  auto vip = rule("vip", {"scripted"});
  vip.recipient_domains = {"vip.example"};
  router r({vip}, *transports_);
  const auto m = message();
  EXPECT_EQ(via(r, m, "a@VIP.example"), "vip:scripted");
  EXPECT_EQ(via(r, m, "a@example.com"), "default:smtp");
  EXPECT_EQ(domain_of("Ann@Sub.Example.COM"), "sub.example.com");
  EXPECT_EQ(domain_of("postmaster"), "");
}

TEST_F(router_test, the_first_available_transport_of_a_rule_serves_and_a_dead_rule_does_not_fall_through) {
  router fallback({rule("mg", {"mailgun", "file"})}, *transports_);
  EXPECT_EQ(via(fallback, message(), "a@example.com"), "mg:file");
  router dead({rule("mg", {"mailgun"}), rule("later", {"smtp"})}, *transports_);
  EXPECT_EQ(via(dead, message(), "a@example.com"), "mg: none (route mg: none of its transports is available)");
}

TEST_F(router_test, transports_only_routes_name_never_serve_the_default_route) {
  std::vector<plugin_host::transport_entry> entries;
  entries.push_back(entry("smtp", false));
  entries.push_back(entry("scripted", true, false));
  plugin_host::transport_set set(std::move(entries));
  router r({}, set);
  EXPECT_EQ(via(r, message(), "a@example.com"), "default: none (no transport is available)");
}

}  // namespace
}  // namespace postern::delivery
