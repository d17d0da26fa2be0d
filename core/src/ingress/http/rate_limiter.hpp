#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace postern::ingress::http {

/// Token buckets per tenant: `rate` requests per second on average, up to `burst` at once.
///
/// Thread-safe.
class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;

  /// Takes one token from the tenant's bucket. Returns 0 when allowed, else how long to wait
  /// until a token is there (for Retry-After). A rate of 0 means no limit.
  clock::duration take(const std::string& tenant, double rate, double burst, clock::time_point now = clock::now());

 private:
  struct bucket {
    double tokens = 0;
    clock::time_point updated;
  };
  std::mutex mutex_;
  std::map<std::string, bucket, std::less<>> buckets_;
};

}  // namespace postern::ingress::http
