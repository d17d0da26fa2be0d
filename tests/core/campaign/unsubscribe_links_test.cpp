#include "campaign/unsubscribe_links.hpp"

#include <gtest/gtest.h>

namespace postern::campaign {
namespace {

const std::string key(64, 'k');

std::string token_of(const std::string& url) { return url.substr(url.rfind('/') + 1); }

TEST(unsubscribe_links, a_link_names_its_target_and_only_its_signature_opens_it) {
  unsubscribe_links links("https://mail.shop.example", key);
  const auto url = links.url("shop", "ann@example.com", "news", "C1");
  ASSERT_TRUE(url.starts_with("https://mail.shop.example/unsubscribe/"));
  const auto target = links.verify(token_of(url));
  ASSERT_TRUE(target);
  EXPECT_EQ(target->tenant, "shop");
  EXPECT_EQ(target->email, "ann@example.com");
  EXPECT_EQ(target->list, "news");
  EXPECT_EQ(target->campaign, "C1");

  auto token = token_of(url);
  token[3] = token[3] == 'A' ? 'B' : 'A';  // another target, same signature
  EXPECT_FALSE(links.verify(token));
  EXPECT_FALSE(links.verify("no-dot"));
  EXPECT_FALSE(links.verify("!!!.???"));
  unsubscribe_links other("https://mail.shop.example", std::string(64, 'x'));
  EXPECT_FALSE(other.verify(token_of(url))) << "a link made under another key";
}

TEST(unsubscribe_links, fields_with_line_breaks_are_never_signed) {
  unsubscribe_links links("http://127.0.0.1:8025", key);
  EXPECT_EQ(links.url("shop", "ann@example.com\nshop", "", ""), "");
}

TEST(unsubscribe_links, no_base_no_link_until_it_is_known) {
  unsubscribe_links links("", key);
  EXPECT_EQ(links.url("shop", "ann@example.com", "", ""), "");
  links.set_base_url("http://127.0.0.1:40000");
  EXPECT_TRUE(links.url("shop", "ann@example.com", "", "").starts_with("http://127.0.0.1:40000/unsubscribe/"));
}

}  // namespace
}  // namespace postern::campaign
