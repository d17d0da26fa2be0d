#pragma once

#include <postern/host.hpp>
#include <postern/policy.hpp>

#include <chrono>
#include <cstdint>

namespace postern::policies {

/// At most `max` marketing messages per recipient address per window (a fixed window: the
/// count starts again at each multiple of the window since the epoch). See README.md.
class frequency_cap final : public postern::policy {
 public:
  explicit frequency_cap(postern::host& host);
  std::vector<std::pair<std::string, std::string>> settings() const override;
  postern::verdict check(const postern::submission_view& submission, postern::policy_stage stage) override;

 private:
  postern::host& host_;
  std::int64_t max_;
  std::chrono::seconds window_;
  std::string window_text_;
};

}  // namespace postern::policies
