#include "delivery/backoff.hpp"

#include <algorithm>

namespace postern::delivery {

backoff::backoff(std::vector<std::chrono::milliseconds> schedule, double jitter)
    : schedule_(std::move(schedule)), jitter_(jitter) {
  if (schedule_.empty()) schedule_.push_back(std::chrono::minutes(5));
}

std::chrono::milliseconds backoff::nominal_delay(unsigned attempts) const {
  const std::size_t step = std::min<std::size_t>(attempts == 0 ? 0 : attempts - 1, schedule_.size() - 1);
  return schedule_[step];
}

std::chrono::milliseconds backoff::delay(unsigned attempts) {
  const auto nominal = static_cast<double>(nominal_delay(attempts).count());
  std::uniform_real_distribution<double> spread(1.0 - jitter_, 1.0 + jitter_);
  return std::chrono::milliseconds(static_cast<std::int64_t>(nominal * spread(random_)));
}

}  // namespace postern::delivery
