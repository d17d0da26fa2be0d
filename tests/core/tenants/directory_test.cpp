#include "tenants/directory.hpp"

#include <gtest/gtest.h>


namespace postern::tenants {
namespace {

TEST(directory, checks_passwords_against_argon2_hashes) {
  config::tenant_settings shop;
  shop.name = "shop";
  const auto hash = hash_password("s3cret");
  EXPECT_TRUE(hash.starts_with("$argon2id$"));
  EXPECT_EQ(hash.find("s3cret"), std::string::npos);
  shop.smtp_users.push_back({"orders", hash});
  directory d({shop});
  EXPECT_EQ(d.authenticate_smtp("orders", "s3cret"), "shop");
  EXPECT_FALSE(d.authenticate_smtp("orders", "S3cret"));
  EXPECT_FALSE(d.authenticate_smtp("nobody", "s3cret"));
  EXPECT_FALSE(d.authenticate_smtp("orders", ""));
  ASSERT_NE(d.find("shop"), nullptr);
  EXPECT_EQ(d.find("other"), nullptr);
}

TEST(directory, a_repeated_login_is_cheap_and_a_changed_password_is_not_cached) {
  config::tenant_settings shop;
  shop.name = "shop";
  shop.smtp_users.push_back({"orders", hash_password("s3cret")});
  directory d({shop});
  ASSERT_TRUE(d.authenticate_smtp("orders", "s3cret"));
  EXPECT_EQ(d.slow_checks(), 1u);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(d.authenticate_smtp("orders", "s3cret"));
  EXPECT_EQ(d.slow_checks(), 1u) << "a login that succeeded before is answered from the cache";
  EXPECT_FALSE(d.authenticate_smtp("orders", "wrong"));
  EXPECT_EQ(d.slow_checks(), 2u) << "a different password is checked for real";
}

}  // namespace
}  // namespace postern::tenants
