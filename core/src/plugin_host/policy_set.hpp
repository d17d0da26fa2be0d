#pragma once

#include "config/config.hpp"
#include "plugin_host/loader.hpp"
#include "plugin_host/plugin_services.hpp"
#include "policies/chain.hpp"

#include <memory>
#include <vector>

namespace postern::plugin_host {

/// The policies named by `[policies] order`, created with their `[policies.NAME]` sections.
/// A policy that is configured but missing or fails to start is an error: postern does not
/// run with a rule silently switched off.
class policy_set {
 public:
  /// Throws std::runtime_error naming the policy and the reason when one cannot be created.
  policy_set(const config::settings& settings, const std::vector<plugin_record>& plugins,
             const gateway_services& gateway);

  const policies::chain& chain() const noexcept { return chain_; }

 private:
  std::vector<std::unique_ptr<plugin_services>> services_;  // declared first: outlives the policies
  policies::chain chain_;
};

}  // namespace postern::plugin_host
