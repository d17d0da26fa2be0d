#include "consent.hpp"

#include <postern/setting_text.hpp>

#include <algorithm>

namespace postern::policies {

consent::consent(postern::host& host) : host_(host) {
  const auto& c = host.config();
  add_headers_ = c.get_bool("list_unsubscribe").value_or(true);
  mailto_ = c.get_string("mailto").value_or("");
}

postern::verdict consent::check(const postern::submission_view& s, postern::policy_stage stage) {
  // Only campaign recipients come with what the contact store knows of them.
  if (stage != postern::policy_stage::content || !s.campaign || !s.contacts) return postern::verdict::accept();
  auto v = postern::verdict::accept();
  const auto& list = s.campaign->list;
  for (std::size_t i = 0; i < s.recipients.size() && i < s.contacts->size(); ++i) {
    const auto& facts = (*s.contacts)[i];
    std::string reason;
    if (!facts.contact_allowed) reason = "contact not allowed";
    else if (facts.unsubscribed) reason = "unsubscribed";
    else if (!list.empty() && std::find(facts.left_lists.begin(), facts.left_lists.end(), list) != facts.left_lists.end())
      reason = "unsubscribed from list " + list;
    if (!reason.empty()) v.drops.push_back({s.recipients[i].index, reason});
  }
  // Campaign messages have one recipient each, so the link can name them.
  if (add_headers_ && s.recipients.size() == 1 && v.drops.empty()) {
    const auto url = host_.unsubscribe_url(s.tenant, s.recipients.front().address, list, s.campaign->id);
    std::string value;
    if (!url.empty()) value = "<" + url + ">";
    if (!mailto_.empty()) value += (value.empty() ? "" : ", ") + std::string("<mailto:") + mailto_ + ">";
    if (!value.empty()) v.add_headers.push_back({"List-Unsubscribe", value});
    // RFC 8058 one-click needs an HTTPS link (a mailto, or plain HTTP, is not one-click): with
    // an http:// link the recipient still unsubscribes through the page the link opens.
    if (url.starts_with("https://"))
      v.add_headers.push_back({"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"});
  }
  return v;
}

std::vector<std::pair<std::string, std::string>> consent::settings() const {
  return {{"list_unsubscribe", postern::setting_text(add_headers_)}, {"mailto", postern::setting_text(mailto_)}};
}

}  // namespace postern::policies
