#pragma once

#include <postern/host.hpp>
#include <postern/policy.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace postern::policies {

/// Marketing mail only to contacts active within a window (365 days by default), except on
/// routes where the window is lifted. See README.md.
class activity_window final : public postern::policy {
 public:
  explicit activity_window(postern::host& host);
  std::vector<std::pair<std::string, std::string>> settings() const override;
  postern::verdict check(const postern::submission_view& submission, postern::policy_stage stage) override;

 private:
  bool lifted(const postern::submission_view& s, const std::string& recipient) const;

  postern::host& host_;
  std::chrono::hours window_;
  std::vector<std::string> lifted_routes_;
};

}  // namespace postern::policies
