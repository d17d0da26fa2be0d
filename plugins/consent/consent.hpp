#pragma once

#include <postern/host.hpp>
#include <postern/policy.hpp>

namespace postern::policies {

/// Drops campaign recipients who do not want the mail: contact not allowed, unsubscribed from
/// everything, or from the campaign's list. Adds one-click unsubscribe fields (RFC 8058) with
/// a link the gateway signs and serves. See README.md.
class consent final : public postern::policy {
 public:
  explicit consent(postern::host& host);
  std::vector<std::pair<std::string, std::string>> settings() const override;
  postern::verdict check(const postern::submission_view& submission, postern::policy_stage stage) override;

 private:
  postern::host& host_;
  bool add_headers_ = true;
  std::string mailto_;  // also offered in List-Unsubscribe, when set
};

}  // namespace postern::policies
