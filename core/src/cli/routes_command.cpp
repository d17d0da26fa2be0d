#include "cli/cli.hpp"

#include "delivery/router.hpp"
#include "logging/log.hpp"
#include "plugin_host/loader.hpp"
#include "plugin_host/transport_set.hpp"

#include <iomanip>
#include <iostream>
#include <sstream>

namespace postern::cli {
namespace {

std::string join(const std::vector<std::string>& values) {
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : ",") + v;
  return out;
}

std::string matchers(const config::route_settings& r) {
  std::string out;
  auto add = [&](const char* name, const std::vector<std::string>& values) {
    if (!values.empty()) out += (out.empty() ? "" : " ") + std::string(name) + "=" + join(values);
  };
  add("stream", r.streams);
  add("tenant", r.tenants);
  add("sender_domain", r.sender_domains);
  add("recipient_domain", r.recipient_domains);
  add("tag", r.tags);
  return out.empty() ? "everything" : out;
}

/// "mailgun (no: no API key), smtp (yes) -> smtp"
std::string candidates(const std::vector<std::string>& names, const plugin_host::transport_set& transports) {
  std::string out, chosen;
  for (const auto& name : names) {
    std::string state = "no: not loaded";
    for (const auto& e : transports.entries()) {
      if (e.name != name) continue;
      state = e.impl && e.probe.available ? "yes" : "no: " + e.probe.reason;
      if (chosen.empty() && e.impl && e.probe.available) chosen = name;
    }
    out += (out.empty() ? "" : ", ") + name + " (" + state + ")";
  }
  return out + "  -> " + (chosen.empty() ? "none available: mail waits" : chosen);
}

}  // namespace

int routes_command(const config::settings& s) {
  logging::init("warn");
  const auto plugins = plugin_host::scan(s.server.plugin_dirs);
  plugin_host::gateway_services gateway{s.server.hostname, s.server.data_dir, nullptr, nullptr};
  plugin_host::transport_set transports(s, plugins, gateway);

  std::vector<std::vector<std::string>> rows{{"ROUTE", "MATCHES", "TRANSPORTS (the first available serves)"}};
  for (const auto& r : s.delivery.routes) rows.push_back({r.name, matchers(r), candidates(r.transports, transports)});
  std::vector<std::string> defaults;
  for (const auto& e : transports.entries()) {
    if (e.in_default) defaults.push_back(e.name);
  }
  rows.push_back({"default", s.delivery.routes.empty() ? "everything" : "everything else", candidates(defaults, transports)});
  std::size_t w0 = 0, w1 = 0;
  for (const auto& r : rows) {
    w0 = std::max(w0, r[0].size());
    w1 = std::max(w1, r[1].size());
  }
  for (const auto& r : rows)
    std::cout << std::left << std::setw(static_cast<int>(w0)) << r[0] << "  " << std::setw(static_cast<int>(w1)) << r[1]
              << "  " << r[2] << '\n';
  std::cout << "\nRoutes are tried in this order; a recipient takes the first that matches. A matching route\n"
               "whose transports are all unavailable keeps its mail waiting rather than using another route.\n";
  if (!s.delivery.limits.empty()) {
    std::cout << "\nLIMITS\n";
    for (const auto& l : s.delivery.limits) {
      std::cout << (l.transport.empty() ? "domain " + l.domain : "transport " + l.transport) << ":";
      if (l.concurrency) std::cout << " at most " << l.concurrency << " at a time";
      if (l.rate > 0) std::cout << (l.concurrency ? "," : "") << " " << l.rate << " messages/s";
      std::cout << '\n';
    }
  }
  transports.stop_all();
  return 0;
}

}  // namespace postern::cli
