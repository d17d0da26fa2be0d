#include "delivery/limiter.hpp"

#include <algorithm>

namespace postern::delivery {

limiter::limiter(std::vector<config::limit_settings> limits) {
  for (auto& l : limits) {
    gate g;
    g.limit = std::move(l);
    g.tokens = std::max(1.0, g.limit.rate);  // a second's worth to start with
    gates_.push_back(std::move(g));
  }
}

bool limiter::limits_domain(const std::string& domain) const {
  return !domain.empty() && std::any_of(gates_.begin(), gates_.end(), [&](const gate& g) { return g.limit.domain == domain; });
}

void limiter::refill(gate& g, clock::time_point now) {
  if (g.limit.rate <= 0) return;
  if (g.refilled != clock::time_point{}) {
    const double elapsed = std::chrono::duration<double>(now - g.refilled).count();
    g.tokens = std::min(std::max(1.0, g.limit.rate), g.tokens + elapsed * g.limit.rate);
  }
  g.refilled = now;
}

bool limiter::try_acquire(const std::string& transport, const std::string& domain, clock::time_point now,
                          std::vector<std::size_t>& held, clock::duration& wait) {
  std::vector<std::size_t> applicable;
  wait = clock::duration::zero();
  bool ok = true;
  for (std::size_t i = 0; i < gates_.size(); ++i) {
    auto& g = gates_[i];
    if (!(g.limit.transport.empty() ? g.limit.domain == domain : g.limit.transport == transport)) continue;
    applicable.push_back(i);
    refill(g, now);
    if (g.limit.concurrency && g.running >= g.limit.concurrency) ok = false;
    if (g.limit.rate > 0 && g.tokens < 1) {
      ok = false;
      const auto until = std::chrono::duration<double>((1 - g.tokens) / g.limit.rate);
      wait = std::max(wait, std::chrono::duration_cast<clock::duration>(until));
    }
  }
  if (!ok) return false;
  for (auto i : applicable) {
    ++gates_[i].running;
    if (gates_[i].limit.rate > 0) gates_[i].tokens -= 1;
  }
  held = std::move(applicable);
  return true;
}

void limiter::release(const std::vector<std::size_t>& held) {
  for (auto i : held) {
    if (gates_[i].running > 0) --gates_[i].running;
  }
}

}  // namespace postern::delivery
