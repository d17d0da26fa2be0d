#pragma once

#include <postern/host.hpp>
#include <postern/policy.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace postern::policies {

/// Meters a campaign's messages out at a set rate: the campaign is recorded at once, and its
/// recipients enter the spool no faster than `rate` per second. See README.md.
class campaign_pacing final : public postern::policy {
 public:
  explicit campaign_pacing(postern::host& host);
  std::vector<std::pair<std::string, std::string>> settings() const override;
  postern::verdict check(const postern::submission_view& submission, postern::policy_stage stage) override;
  void on_campaign_end(const postern::campaign_summary& summary) override;

 private:
  struct bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point last{};
  };

  double rate_;   // messages per second per campaign
  double burst_;  // bucket size
  std::pair<std::string, std::int64_t> rate_setting_;  // the key that set the rate, and its value
  std::int64_t burst_setting_;
  std::mutex mutex_;
  std::map<std::string, bucket> buckets_;  // by campaign id
};

}  // namespace postern::policies
