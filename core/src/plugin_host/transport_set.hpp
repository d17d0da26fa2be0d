#pragma once

#include "config/config.hpp"
#include "plugin_host/loader.hpp"
#include "plugin_host/plugin_services.hpp"

#include <postern/transport.hpp>

#include <memory>
#include <string>
#include <vector>

namespace postern::plugin_host {

/// A configured transport with the result of its probe.
struct transport_entry {
  std::string name;
  std::filesystem::path file;
  std::unique_ptr<plugin_services> services;    // declared first: outlives impl
  std::shared_ptr<postern::transport> impl;     // null when it could not be created
  postern::probe_result probe;                  // available=false with the reason otherwise
  bool in_default = true;                       // serves the default route (not only named routes)
};

/// The transports postern delivers through, in priority order.
///
/// With `delivery.transports` set, exactly those, in that order. Otherwise every transport
/// plugin found, ordered smtp, mailgun, sendmail, file, then the rest by name. Each is created
/// with its `[transports.NAME]` section and probed once at start-up.
class transport_set {
 public:
  transport_set(const config::settings& settings, const std::vector<plugin_record>& plugins,
                const gateway_services& gateway);
  /// Takes ready-made entries, in priority order (tests, embedding).
  explicit transport_set(std::vector<transport_entry> entries) : entries_(std::move(entries)) {}

  const std::vector<transport_entry>& entries() const noexcept { return entries_; }
  /// The first available transport of the default route, preferring `preferred` if it is
  /// available. Null if none.
  const transport_entry* pick(std::string_view preferred = {}) const;
  /// Probes again the transports that were unavailable (a relay came back, a disk was
  /// mounted). Returns how many became available. Call from one thread at a time.
  std::size_t reprobe();
  /// Calls stop() on each transport (before the delivery engine's threads are joined).
  void stop_all();

 private:
  std::vector<transport_entry> entries_;
};

/// The built-in priority of transports when the configuration names none.
const std::vector<std::string>& default_transport_priority();

}  // namespace postern::plugin_host
