#pragma once

#include <postern/host.hpp>
#include <postern/policy.hpp>

#include <string>

namespace postern::policies {

/// When a campaign ends (every recipient final, or cancelled), mails one summary to the
/// tenant's notify address. Exactly once: the notice is handed over under a key made of the
/// campaign id, so a second hand-over after a crash is not stored again. See README.md.
class completion_notice final : public postern::policy {
 public:
  explicit completion_notice(postern::host& host);
  std::vector<std::pair<std::string, std::string>> settings() const override;
  postern::verdict check(const postern::submission_view&, postern::policy_stage) override {
    return postern::verdict::accept();
  }
  void on_campaign_end(const postern::campaign_summary& summary) override;

  /// The notice's RFC 5322 text (exposed for tests).
  std::string compose(const postern::campaign_summary& summary, const std::string& to) const;

 private:
  postern::host& host_;
  std::string from_;
};

}  // namespace postern::policies
