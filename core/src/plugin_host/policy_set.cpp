#include "plugin_host/policy_set.hpp"

#include <algorithm>
#include <stdexcept>

namespace postern::plugin_host {

policy_set::policy_set(const config::settings& settings, const std::vector<plugin_record>& plugins,
                       const gateway_services& gateway) {
  std::vector<policies::named_policy> policies;
  for (const auto& name : settings.policy_order) {
    auto found = std::find_if(plugins.begin(), plugins.end(),
                              [&](const plugin_record& p) { return p.lib && p.kind == "policy" && p.name == name; });
    if (found == plugins.end())
      throw std::runtime_error("policy " + name + " is listed in [policies] order but no such plugin was found");
    toml::table section;
    if (const toml::table* t = settings.policies[name].as_table()) section = *t;
    services_.push_back(std::make_unique<plugin_services>(
        name, config::toml_section(section, settings.file.string() + " [policies." + name + "]"), gateway));
    policies.push_back({name, found->lib->create_policy(*services_.back())});
  }
  chain_ = policies::chain(std::move(policies));
}


}  // namespace postern::plugin_host
