#include "delivery/limiter.hpp"

#include <gtest/gtest.h>

namespace postern::delivery {
namespace {

using namespace std::chrono_literals;

config::limit_settings for_transport(std::string name, std::size_t concurrency, double rate) {
  return {std::move(name), "", concurrency, rate};
}
config::limit_settings for_domain(std::string domain, std::size_t concurrency, double rate) {
  return {"", std::move(domain), concurrency, rate};
}

TEST(limiter, concurrency_slots_are_taken_and_given_back) {
  limiter l({for_transport("smtp", 2, 0)});
  const auto now = limiter::clock::now();
  std::vector<std::size_t> a, b, c;
  limiter::clock::duration wait{};
  EXPECT_TRUE(l.try_acquire("smtp", "", now, a, wait));
  EXPECT_TRUE(l.try_acquire("smtp", "", now, b, wait));
  EXPECT_FALSE(l.try_acquire("smtp", "", now, c, wait));
  EXPECT_EQ(wait, limiter::clock::duration::zero()) << "waits for a slot, not for time";
  EXPECT_TRUE(l.try_acquire("file", "", now, c, wait)) << "other transports are not limited";
  l.release(a);
  EXPECT_TRUE(l.try_acquire("smtp", "", now, c, wait));
}

TEST(limiter, a_rate_allows_a_seconds_worth_then_spaces_the_rest) {
  limiter l({for_domain("gmail.com", 0, 4)});
  auto now = limiter::clock::now();
  std::vector<std::size_t> held;
  limiter::clock::duration wait{};
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(l.try_acquire("smtp", "gmail.com", now, held, wait)) << i;
  EXPECT_FALSE(l.try_acquire("smtp", "gmail.com", now, held, wait));
  EXPECT_GT(wait, 200ms);
  EXPECT_LE(wait, 250ms);
  EXPECT_TRUE(l.try_acquire("smtp", "example.com", now, held, wait)) << "another domain is free";
  now += 250ms;
  EXPECT_TRUE(l.try_acquire("smtp", "gmail.com", now, held, wait));
  EXPECT_FALSE(l.try_acquire("smtp", "gmail.com", now, held, wait));
  EXPECT_TRUE(l.limits_domain("gmail.com"));
  EXPECT_FALSE(l.limits_domain("example.com"));
}

TEST(limiter, every_applicable_gate_must_pass_or_none_is_taken) {
  limiter l({for_transport("smtp", 1, 0), for_domain("gmail.com", 0, 1)});
  const auto now = limiter::clock::now();
  std::vector<std::size_t> first, second;
  limiter::clock::duration wait{};
  ASSERT_TRUE(l.try_acquire("smtp", "gmail.com", now, first, wait));
  EXPECT_EQ(first.size(), 2u);
  l.release(first);
  // The transport has a slot again, but the domain has no token: nothing may be taken.
  EXPECT_FALSE(l.try_acquire("smtp", "gmail.com", now, second, wait));
  EXPECT_GT(wait, 0ms);
  EXPECT_TRUE(second.empty());
  EXPECT_TRUE(l.try_acquire("smtp", "example.com", now, second, wait)) << "the transport slot was not kept";
}

}  // namespace
}  // namespace postern::delivery
