#include "delivery/router.hpp"

#include "mime/address.hpp"

#include <algorithm>
#include <cctype>

namespace postern::delivery {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// An empty matcher matches anything; otherwise one of its values must (case-insensitively).
bool any_of(const std::vector<std::string>& matcher, std::string_view value) {
  if (matcher.empty()) return true;
  const auto v = lower(value);
  return std::any_of(matcher.begin(), matcher.end(), [&](const std::string& m) { return lower(m) == v; });
}

}  // namespace

std::string domain_of(std::string_view address) {
  return lower(mime::domain_part(address));
}

router::router(std::vector<config::route_settings> rules, const plugin_host::transport_set& transports)
    : rules_(std::move(rules)), transports_(transports) {}

bool router::matches(const config::route_settings& rule, const postern::message& msg, std::string_view recipient) const {
  const bool tag_ok = rule.tags.empty() || std::any_of(msg.tags.begin(), msg.tags.end(),
                                                       [&](const std::string& t) { return any_of(rule.tags, t); });
  return tag_ok && any_of(rule.streams, msg.stream == postern::mail_stream::marketing ? "marketing" : "transactional") &&
         any_of(rule.tenants, msg.tenant) && any_of(rule.sender_domains, domain_of(msg.env.mail_from)) &&
         any_of(rule.recipient_domains, domain_of(recipient));
}

route_decision router::route(const postern::message& msg, std::string_view recipient) const {
  for (const auto& rule : rules_) {
    if (!matches(rule, msg, recipient)) continue;
    route_decision d;
    d.route = rule.name;
    for (const auto& name : rule.transports) {
      for (const auto& e : transports_.entries()) {
        if (e.name == name && e.impl && e.probe.available) {
          d.transport = &e;
          return d;
        }
      }
    }
    d.reason = "route " + rule.name + ": none of its transports is available";
    return d;
  }
  route_decision d;
  d.route = "default";
  d.transport = transports_.pick();
  if (!d.transport) d.reason = "no transport is available";
  return d;
}

}  // namespace postern::delivery
