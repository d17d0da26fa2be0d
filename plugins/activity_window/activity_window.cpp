#include "activity_window.hpp"

#include <postern/setting_text.hpp>

#include <algorithm>
#include <stdexcept>

namespace postern::policies {

activity_window::activity_window(postern::host& host) : host_(host) {
  const auto& c = host.config();
  const auto days = c.get_int("days").value_or(365);
  if (days < 1 || days > 36500) throw std::runtime_error(c.origin() + ": days must be 1 to 36500");
  window_ = std::chrono::hours(24 * days);
  lifted_routes_ = c.get_strings("lifted_routes");
}

bool activity_window::lifted(const postern::submission_view& s, const std::string& recipient) const {
  if (lifted_routes_.empty()) return false;
  postern::message m;
  m.tenant = s.tenant;
  m.stream = s.stream;
  m.tags = s.tags;
  m.env.mail_from = s.mail_from;
  const auto route = host_.route_of(m, recipient);
  return std::find(lifted_routes_.begin(), lifted_routes_.end(), route) != lifted_routes_.end();
}

postern::verdict activity_window::check(const postern::submission_view& s, postern::policy_stage stage) {
  if (stage != postern::policy_stage::content || !s.contacts || s.stream != postern::mail_stream::marketing)
    return postern::verdict::accept();
  auto v = postern::verdict::accept();
  const auto since = host_.now() - window_;
  const auto days = std::to_string(window_.count() / 24);
  for (std::size_t i = 0; i < s.recipients.size() && i < s.contacts->size(); ++i) {
    if ((*s.contacts)[i].last_interaction >= since) continue;
    if (lifted(s, s.recipients[i].address)) continue;
    v.drops.push_back({s.recipients[i].index, "inactive for more than " + days + " days"});
  }
  return v;
}

std::vector<std::pair<std::string, std::string>> activity_window::settings() const {
  return {{"days", std::to_string(window_.count() / 24)}, {"lifted_routes", postern::setting_text(lifted_routes_)}};
}

}  // namespace postern::policies
