#pragma once

#include <postern/host.hpp>
#include <postern/policy.hpp>

namespace postern::policies {

/// Refuses a campaign whose fingerprint (tenant, normalized content, audience rule) matches
/// one the tenant already sent, naming it; an explicit resend goes through and is recorded.
/// See README.md.
class no_resend final : public postern::policy {
 public:
  explicit no_resend(postern::host& host);
  postern::verdict check(const postern::submission_view& submission, postern::policy_stage stage) override;
  postern::verdict on_campaign_start(const postern::campaign_summary& summary) override;

 private:
  postern::host& host_;
};

}  // namespace postern::policies
