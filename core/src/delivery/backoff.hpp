#pragma once

#include <chrono>
#include <random>
#include <vector>

namespace postern::delivery {

/// Retry schedule for temporary failures: the n-th retry waits schedule[n-1] (the last step
/// repeats), spread by ±jitter so that messages deferred together do not retry together.
class backoff {
 public:
  backoff(std::vector<std::chrono::milliseconds> schedule, double jitter);

  /// Delay before the next attempt, after `attempts` attempts so far (>= 1).
  std::chrono::milliseconds delay(unsigned attempts);
  /// The same without jitter (for reports and tests).
  std::chrono::milliseconds nominal_delay(unsigned attempts) const;

 private:
  std::vector<std::chrono::milliseconds> schedule_;
  double jitter_;
  std::mt19937_64 random_{std::random_device{}()};
};

}  // namespace postern::delivery
