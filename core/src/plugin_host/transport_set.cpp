#include "plugin_host/transport_set.hpp"

#include "logging/log.hpp"

#include <algorithm>

namespace postern::plugin_host {

const std::vector<std::string>& default_transport_priority() {
  static const std::vector<std::string> order{"smtp", "mailgun", "sendmail", "file"};
  return order;
}

namespace {

std::vector<std::string> ordered_names(const config::settings& settings, const std::vector<plugin_record>& plugins) {
  if (!settings.delivery.transports.empty()) return settings.delivery.transports;
  std::vector<std::string> names;
  for (const auto& p : plugins) {
    if (p.lib && p.kind == "transport") names.push_back(p.name);
  }
  const auto& priority = default_transport_priority();
  auto rank = [&](const std::string& n) {
    auto it = std::find(priority.begin(), priority.end(), n);
    return std::make_pair(static_cast<std::size_t>(it - priority.begin()), n);
  };
  std::sort(names.begin(), names.end(), [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  return names;
}

toml::table section_of(const config::settings& settings, const std::string& name) {
  if (const toml::table* t = settings.transports[name].as_table()) return *t;
  return {};
}

}  // namespace

transport_set::transport_set(const config::settings& settings, const std::vector<plugin_record>& plugins,
                             const gateway_services& gateway) {
  auto log = logging::get("plugins");
  auto names = ordered_names(settings, plugins);
  const std::size_t defaults = names.size();
  // Transports that only routes name are loaded too, but never serve the default route.
  for (const auto& route : settings.delivery.routes) {
    for (const auto& t : route.transports) {
      if (std::find(names.begin(), names.end(), t) == names.end()) names.push_back(t);
    }
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto& name = names[i];
    transport_entry entry;
    entry.name = name;
    entry.in_default = i < defaults;
    auto found = std::find_if(plugins.begin(), plugins.end(),
                              [&](const plugin_record& p) { return p.lib && p.kind == "transport" && p.name == name; });
    if (found == plugins.end()) {
      entry.probe = {false, "no transport plugin named " + name + " was found in the plugin directories"};
      log->warn("transport {}: {}", name, entry.probe.reason);
      entries_.push_back(std::move(entry));
      continue;
    }
    entry.file = found->file;
    entry.services = std::make_unique<plugin_services>(
        name, config::toml_section(section_of(settings, name), settings.file.string() + " [transports." + name + "]"),
        gateway);
    try {
      entry.impl = found->lib->create_transport(*entry.services);
      entry.probe = entry.impl->probe();
    } catch (const std::exception& e) {
      entry.impl.reset();
      entry.probe = {false, e.what()};
    }
    if (entry.probe.available) {
      log->info("transport {} {}: available ({})", name, found->version, entry.probe.reason);
    } else {
      log->warn("transport {} {}: not available: {}", name, found->version, entry.probe.reason);
    }
    entries_.push_back(std::move(entry));
  }
}

const transport_entry* transport_set::pick(std::string_view preferred) const {
  if (!preferred.empty()) {
    for (const auto& e : entries_) {
      if (e.name == preferred && e.impl && e.probe.available) return &e;
    }
  }
  for (const auto& e : entries_) {
    if (e.in_default && e.impl && e.probe.available) return &e;
  }
  return nullptr;
}

std::size_t transport_set::reprobe() {
  std::size_t recovered = 0;
  for (auto& e : entries_) {
    if (!e.impl || e.probe.available) continue;
    try {
      e.probe = e.impl->probe();
    } catch (const std::exception& ex) {
      e.probe = {false, ex.what()};
    }
    if (e.probe.available) {
      ++recovered;
      logging::get("plugins")->info("transport {} is available again ({})", e.name, e.probe.reason);
    }
  }
  return recovered;
}

void transport_set::stop_all() {
  for (auto& e : entries_) {
    if (e.impl) e.impl->stop();
  }
}

}  // namespace postern::plugin_host
