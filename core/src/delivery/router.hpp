#pragma once

#include "config/config.hpp"
#include "plugin_host/transport_set.hpp"

#include <postern/types.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace postern::delivery {

/// Where one recipient of a message goes: a transport, or why none can take it now.
struct route_decision {
  const plugin_host::transport_entry* transport = nullptr;  ///< Null: nothing available.
  std::string route;   ///< The rule that matched, or "default".
  std::string reason;  ///< Why there is no transport, when there is none.
};

/// Chooses a transport per recipient from the configured routes.
///
/// Rules are tried in order; the first whose matchers all match the message (stream, tenant,
/// sender domain, tag) and the recipient (recipient domain) decides, and its first available
/// transport serves. A matching rule whose transports are all unavailable does not fall
/// through to later rules: mail that a rule keeps off a transport stays off it, and waits.
/// No matching rule: the default route, the first available transport in priority order.
///
/// Thread-safe for concurrent route() calls (availability may change under reprobe()).
class router {
 public:
  router(std::vector<config::route_settings> rules, const plugin_host::transport_set& transports);

  route_decision route(const postern::message& msg, std::string_view recipient) const;
  const std::vector<config::route_settings>& rules() const noexcept { return rules_; }

 private:
  bool matches(const config::route_settings& rule, const postern::message& msg, std::string_view recipient) const;

  std::vector<config::route_settings> rules_;
  const plugin_host::transport_set& transports_;
};

/// The domain of an address, lower-cased ("" for none).
std::string domain_of(std::string_view address);

}  // namespace postern::delivery
