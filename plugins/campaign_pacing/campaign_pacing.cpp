#include "campaign_pacing.hpp"

#include <postern/setting_text.hpp>

#include <algorithm>
#include <stdexcept>

namespace postern::policies {

campaign_pacing::campaign_pacing(postern::host& host) {
  const auto& c = host.config();
  const auto per_minute = c.get_int("per_minute");
  const auto per_second = c.get_int("per_second");
  if (per_minute && per_second) throw std::runtime_error(c.origin() + ": give per_second or per_minute, not both");
  rate_ = per_second ? static_cast<double>(*per_second) : per_minute ? static_cast<double>(*per_minute) / 60.0 : 10.0;
  rate_setting_ = per_minute ? std::pair{std::string("per_minute"), *per_minute}
                             : std::pair{std::string("per_second"), per_second.value_or(10)};
  if (rate_ <= 0) throw std::runtime_error(c.origin() + ": the rate must be above zero");
  // Default: a second's worth, so that a campaign starts at its rate at once.
  burst_setting_ = c.get_int("burst").value_or(std::max<std::int64_t>(1, static_cast<std::int64_t>(rate_)));
  burst_ = static_cast<double>(burst_setting_);
  if (burst_ < 1) throw std::runtime_error(c.origin() + ": burst must be at least 1");
}

postern::verdict campaign_pacing::check(const postern::submission_view& s, postern::policy_stage stage) {
  // A report decides nothing about time; only real campaign messages are metered.
  if (stage != postern::policy_stage::content || !s.campaign || s.dry_run) return postern::verdict::accept();
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  auto [it, fresh] = buckets_.try_emplace(s.campaign->id);
  auto& b = it->second;
  if (fresh) b = {burst_, now};
  b.tokens = std::min(burst_, b.tokens + std::chrono::duration<double>(now - b.last).count() * rate_);
  b.last = now;
  if (b.tokens < 1) return postern::verdict::defer(451, "4.7.0", "Campaign paced: try again shortly");
  b.tokens -= 1;
  return postern::verdict::accept();
}

void campaign_pacing::on_campaign_end(const postern::campaign_summary& summary) {
  std::lock_guard lock(mutex_);
  buckets_.erase(summary.id);
}

std::vector<std::pair<std::string, std::string>> campaign_pacing::settings() const {
  // The rate as it was given: per minute if the config said so, else per second.
  return {{rate_setting_.first, std::to_string(rate_setting_.second)}, {"burst", std::to_string(burst_setting_)}};
}

}  // namespace postern::policies
