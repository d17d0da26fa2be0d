#pragma once

#include <postern/host.hpp>
#include <postern/policy.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace postern::policies {

/// Marketing mail may link only to the tenant's allowed domains (and their subdomains); a
/// campaign or message with any other link is refused whole, listing the offending URLs.
/// Links are read from the decoded text and HTML parts (GMime), so quoted-printable and
/// base64 bodies hide nothing. See README.md.
class link_guard final : public postern::policy {
 public:
  explicit link_guard(postern::host& host);
  std::vector<std::pair<std::string, std::string>> settings() const override;
  postern::verdict check(const postern::submission_view& submission, postern::policy_stage stage) override;

  /// Every http(s) URL in the message's text parts, decoded (exposed for tests). A member:
  /// GMime is initialised by the constructor.
  std::vector<std::string> links_in(const std::string& raw) const;

 private:
  bool allowed(std::string_view host, const std::vector<std::string>& domains) const;

  postern::host& host_;
  bool allow_sender_domain_ = true;
  std::vector<std::string> allowed_everywhere_;
};

}  // namespace postern::policies
