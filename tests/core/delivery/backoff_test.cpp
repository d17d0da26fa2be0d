#include "delivery/backoff.hpp"

#include <gtest/gtest.h>

#include <set>

namespace postern::delivery {
namespace {

using namespace std::chrono_literals;

TEST(backoff, follows_the_schedule_and_repeats_its_last_step) {
  backoff b({1min, 5min, 1h}, 0.0);
  EXPECT_EQ(b.delay(1), 1min);
  EXPECT_EQ(b.delay(2), 5min);
  EXPECT_EQ(b.delay(3), 1h);
  EXPECT_EQ(b.delay(50), 1h);
}

TEST(backoff, jitter_stays_within_bounds_and_varies) {
  backoff b({10min}, 0.2);
  std::set<std::int64_t> seen;
  for (int i = 0; i < 200; ++i) {
    const auto d = b.delay(1);
    EXPECT_GE(d, 8min);
    EXPECT_LE(d, 12min);
    seen.insert(d.count());
  }
  EXPECT_GT(seen.size(), 50u) << "jitter spreads retries";
  EXPECT_EQ(b.nominal_delay(1), 10min);
}

}  // namespace
}  // namespace postern::delivery
