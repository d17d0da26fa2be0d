#pragma once

#include "config/config.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace postern::delivery {

/// Concurrency and rate gates for deliveries, one per configured transport or recipient-domain
/// limit (`[[delivery.limits]]`). A delivery passes every gate that applies to it, or none.
///
/// Not thread-safe: the delivery engine uses it on its strand only.
class limiter {
 public:
  using clock = std::chrono::steady_clock;

  explicit limiter(std::vector<config::limit_settings> limits);

  /// True when a limit names this recipient domain (deliveries to it are then kept apart).
  bool limits_domain(const std::string& domain) const;

  /// Passes the gates for one delivery through `transport` to `domain` (empty: none): takes a
  /// slot and a token from each and fills `held`, or takes nothing and sets `wait` to how long
  /// until a token is there (zero when the delivery waits for a free slot instead).
  bool try_acquire(const std::string& transport, const std::string& domain, clock::time_point now,
                   std::vector<std::size_t>& held, clock::duration& wait);
  /// Gives back the slots of a finished delivery.
  void release(const std::vector<std::size_t>& held);

 private:
  struct gate {
    config::limit_settings limit;
    std::size_t running = 0;
    double tokens = 0;
    clock::time_point refilled{};
  };
  void refill(gate& g, clock::time_point now);

  std::vector<gate> gates_;
};

}  // namespace postern::delivery
