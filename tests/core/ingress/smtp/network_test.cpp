#include "ingress/smtp/network.hpp"

#include <gtest/gtest.h>

namespace postern::ingress::smtp {
namespace {

using boost::asio::ip::make_address;

TEST(cidr, matches_v4_v6_and_mapped_addresses) {
  cidr local("127.0.0.0/8");
  EXPECT_TRUE(local.contains(make_address("127.1.2.3")));
  EXPECT_FALSE(local.contains(make_address("128.0.0.1")));
  EXPECT_TRUE(local.contains(make_address("::ffff:127.0.0.1")));
  cidr one("192.0.2.10");
  EXPECT_TRUE(one.contains(make_address("192.0.2.10")));
  EXPECT_FALSE(one.contains(make_address("192.0.2.11")));
  cidr v6("2001:db8::/32");
  EXPECT_TRUE(v6.contains(make_address("2001:db8:1::5")));
  EXPECT_FALSE(v6.contains(make_address("2001:db9::5")));
  EXPECT_FALSE(v6.contains(make_address("127.0.0.1")));
  cidr odd("10.0.0.0/9");
  EXPECT_TRUE(odd.contains(make_address("10.127.255.255")));
  EXPECT_FALSE(odd.contains(make_address("10.128.0.0")));
  EXPECT_TRUE(in_any({cidr("10.0.0.0/8"), cidr("::1")}, make_address("::1")));
}

TEST(cidr, refuses_malformed_blocks) {
  EXPECT_THROW(cidr("example.com"), std::invalid_argument);
  EXPECT_THROW(cidr("10.0.0.0/33"), std::invalid_argument);
  EXPECT_THROW(cidr("10.0.0.0/8x"), std::invalid_argument);
}

TEST(endpoint, parses_listen_addresses) {
  EXPECT_EQ(parse_endpoint("127.0.0.1:2525").port(), 2525);
  EXPECT_EQ(parse_endpoint("[::1]:25").address(), make_address("::1"));
  EXPECT_EQ(parse_endpoint(":587").address(), make_address("0.0.0.0"));
  EXPECT_THROW(parse_endpoint("localhost:25"), std::invalid_argument);
  EXPECT_THROW(parse_endpoint("127.0.0.1"), std::invalid_argument);
  EXPECT_THROW(parse_endpoint("127.0.0.1:99999"), std::invalid_argument);
}

}  // namespace
}  // namespace postern::ingress::smtp
