#include "ingress/http/rate_limiter.hpp"

#include <algorithm>

namespace postern::ingress::http {

rate_limiter::clock::duration rate_limiter::take(const std::string& tenant, double rate, double burst,
                                                 clock::time_point now) {
  if (rate <= 0) return clock::duration::zero();
  if (burst < 1) burst = std::max(1.0, 2 * rate);
  std::lock_guard lock(mutex_);
  auto [it, fresh] = buckets_.try_emplace(tenant, bucket{burst, now});
  auto& b = it->second;
  if (!fresh) {
    const double elapsed = std::chrono::duration<double>(now - b.updated).count();
    b.tokens = std::min(burst, b.tokens + elapsed * rate);
    b.updated = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return clock::duration::zero();
  }
  const double wait = (1 - b.tokens) / rate;
  // Rounded up: rounded down, a client waiting exactly this long comes back a hair early, and
  // a wait under one tick would read as 0, "allowed", with no token taken.
  return std::chrono::ceil<clock::duration>(std::chrono::duration<double>(wait));
}

}  // namespace postern::ingress::http
