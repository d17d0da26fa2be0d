#include "cli/cli.hpp"

#include "logging/log.hpp"
#include "plugin_host/loader.hpp"
#include "plugin_host/policy_set.hpp"
#include "plugin_host/transport_set.hpp"

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <optional>

namespace postern::cli {
namespace {

struct row {
  std::string name, kind, version, available, reason, file;
};

void print(const std::vector<row>& rows) {
  std::vector<std::size_t> w{4, 4, 7, 9, 6};
  for (const auto& r : rows) {
    w[0] = std::max(w[0], r.name.size());
    w[1] = std::max(w[1], r.kind.size());
    w[2] = std::max(w[2], r.version.size());
    w[3] = std::max(w[3], r.available.size());
    w[4] = std::max(w[4], std::min<std::size_t>(r.reason.size(), 60));
  }
  auto line = [&](const row& r) {
    std::cout << std::left << std::setw(static_cast<int>(w[0])) << r.name << "  " << std::setw(static_cast<int>(w[1]))
              << r.kind << "  " << std::setw(static_cast<int>(w[2])) << r.version << "  "
              << std::setw(static_cast<int>(w[3])) << r.available << "  " << std::setw(static_cast<int>(w[4]))
              << r.reason << "  " << r.file << '\n';
  };
  line({"NAME", "KIND", "VERSION", "AVAILABLE", "REASON", "FILE"});
  for (const auto& r : rows) line(r);
}

/// One policy's settings: those it lists as in effect (marked when the config leaves them to
/// the default), the config's other plain keys, then its tables (per-tenant settings such as
/// grants), under one [policies.NAME] header.
void print_policy_settings(const std::string& name, const toml::table* section,
                           const std::vector<std::pair<std::string, std::string>>& in_effect,
                           const std::string& settings_error) {
  std::cout << "\n[policies." << name << "]\n";
  if (!settings_error.empty()) std::cout << "# settings() failed: " << settings_error << '\n';
  for (const auto& [key, value] : in_effect) {
    std::cout << key << " = " << value;
    if (!section || !section->contains(key)) std::cout << "  # default";
    std::cout << '\n';
  }
  toml::table plain, tables;
  if (section) {
    for (const auto& [key, value] : *section) {
      const bool listed = std::any_of(in_effect.begin(), in_effect.end(),
                                      [&](const auto& s) { return s.first == key.str(); });
      if (listed) continue;
      if (value.is_table()) tables.insert(key, value);
      else plain.insert(key, value);
    }
  }
  if (!plain.empty()) std::cout << plain << '\n';
  if (!tables.empty()) {
    // Printed from the root, so that nested tables keep their full names.
    toml::table root{{"policies", toml::table{{name, tables}}}};
    std::cout << root << '\n';
  }
  if (in_effect.empty() && plain.empty() && tables.empty()) std::cout << "# no settings\n";
}

/// What a created policy lists as its settings; a policy that throws is shown without them,
/// its error in `error`.
std::vector<std::pair<std::string, std::string>> settings_of(const postern::policy& policy, std::string& error) {
  try {
    return policy.settings();
  } catch (const std::exception& e) {
    error = e.what();
    return {};
  }
}

/// The policy chain, in order, with each policy's settings; from the chain as created when it
/// could be, else as the config names it.
void print_chain(const config::settings& s, const plugin_host::policy_set* created, const std::string& error) {
  std::cout << "policy chain: ";
  if (s.policy_order.empty()) std::cout << "none ([policies] order is empty)\n";
  for (std::size_t i = 0; i < s.policy_order.size(); ++i)
    std::cout << s.policy_order[i] << (i + 1 < s.policy_order.size() ? " -> " : "\n");
  if (!error.empty()) std::cout << "policy chain error: " << error << '\n';
  for (std::size_t i = 0; i < s.policy_order.size(); ++i) {
    const auto& name = s.policy_order[i];
    std::vector<std::pair<std::string, std::string>> in_effect;
    std::string settings_error;
    if (created) in_effect = settings_of(*created->chain().policies().at(i).impl, settings_error);
    print_policy_settings(name, s.policies[name].as_table(), in_effect, settings_error);
  }
}

}  // namespace

int plugins_command(const config::settings& s) {
  // Probing may log; keep the table readable by logging only warnings and errors.
  logging::init("warn");
  const auto plugins = plugin_host::scan(s.server.plugin_dirs);
  plugin_host::gateway_services gateway{s.server.hostname, s.server.data_dir, nullptr, nullptr};
  // Transports are created as `serve` would create them, so availability is the real answer.
  config::settings all = s;
  all.delivery.transports.clear();
  plugin_host::transport_set transports(all, plugins, gateway);
  // The chain is created as `serve` would create it, so a bad policy setting shows here.
  std::string chain_error;
  std::optional<plugin_host::policy_set> policies;
  try {
    policies.emplace(s, plugins, gateway);
  } catch (const std::exception& e) {
    chain_error = e.what();
  }

  std::vector<row> rows;
  for (const auto& p : plugins) {
    row r{p.name.empty() ? p.file.stem().string() : p.name, p.kind.empty() ? "-" : p.kind,
          p.version.empty() ? "-" : p.version, "no", p.error, p.file.string()};
    if (p.lib && p.kind == "transport") {
      for (const auto& t : transports.entries()) {
        if (t.name != p.name || t.file != p.file) continue;
        r.available = t.probe.available ? "yes" : "no";
        r.reason = t.probe.reason;
      }
    } else if (p.lib) {
      r.available = "yes";
      const auto at = std::find(s.policy_order.begin(), s.policy_order.end(), p.name);
      r.reason = at == s.policy_order.end() ? "loaded; not in [policies] order"
                                            : "in the chain, position " + std::to_string(at - s.policy_order.begin() + 1);
    }
    rows.push_back(std::move(r));
  }
  if (rows.empty()) {
    std::cout << "no plugins found in:";
    for (const auto& d : s.server.plugin_dirs) std::cout << ' ' << d.string();
    std::cout << '\n';
    return 0;
  }
  print(rows);
  std::cout << "\nplugin directories:";
  for (const auto& d : s.server.plugin_dirs) std::cout << ' ' << d.string();
  std::cout << "\ndelivery order: ";
  if (s.delivery.transports.empty()) {
    std::cout << "first available of";
    for (const auto& n : plugin_host::default_transport_priority()) std::cout << ' ' << n;
    std::cout << " (built-in priority)\n";
  } else {
    for (const auto& n : s.delivery.transports) std::cout << n << ' ';
    std::cout << "(from [delivery] transports)\n";
  }
  print_chain(s, policies ? &*policies : nullptr, chain_error);
  return chain_error.empty() ? 0 : 1;
}

}  // namespace postern::cli
