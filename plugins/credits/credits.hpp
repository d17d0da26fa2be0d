#pragma once

#include <postern/host.hpp>
#include <postern/policy.hpp>

#include <cstdint>

namespace postern::policies {

/// Prices campaign mail: a prospect costs `prospect_cost` credits (3), a past buyer
/// `buyer_cost` (0), anyone else `other_cost` (0). A campaign is charged whole when it starts,
/// in the transaction that records it; one the tenant's balance cannot pay is refused.
/// See README.md.
class credits final : public postern::policy {
 public:
  explicit credits(postern::host& host);
  std::vector<std::pair<std::string, std::string>> settings() const override;
  postern::verdict check(const postern::submission_view& submission, postern::policy_stage stage) override;
  postern::verdict on_campaign_start(const postern::campaign_summary& summary) override;
  /// Gives back what the start charged for recipients never sent.
  void on_campaign_end(const postern::campaign_summary& summary) override;

 private:
  postern::host& host_;
  std::int64_t prospect_cost_, buyer_cost_, other_cost_;
};

}  // namespace postern::policies
