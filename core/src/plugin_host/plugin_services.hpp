#pragma once

#include "config/toml_section.hpp"
#include "plugin_host/plugin_data.hpp"

#include <postern/host.hpp>

#include <spdlog/logger.h>

#include <filesystem>
#include <functional>
#include <memory>

namespace postern::plugin_host {

/// Gateway services shared by every plugin, lent to each through its own plugin_services.
struct gateway_services {
  std::string hostname;
  std::filesystem::path data_dir;
  postern::metrics* metrics = nullptr;
  /// Submits a plugin's message; unset in contexts that cannot send (e.g. `postern plugins`).
  std::function<void(postern::new_message, postern::submit_callback, const std::string& plugin)> submit;
  /// Holds the plugins' stores; null in contexts without one.
  campaign::campaign_store* data = nullptr;
  /// Signs one-click unsubscribe links (tenant, email, list, campaign); unset without HTTP.
  std::function<std::string(std::string_view, std::string_view, std::string_view, std::string_view)> unsubscribe_url{};
  /// The route a message would take to a recipient; unset where nothing is delivered.
  std::function<std::string(const postern::message&, std::string_view)> route_of{};
};

/// The `host` one plugin sees: its own logger ("plugin.NAME") and config section, the
/// gateway's clock, host name, metrics and submission path. Outlives the plugin's objects.
class plugin_services final : public postern::host {
 public:
  plugin_services(std::string plugin_name, config::toml_section section, const gateway_services& gateway);

  void log(postern::log_level level, std::string_view text) override;
  const postern::config_section& config() const override { return section_; }
  std::chrono::system_clock::time_point now() const override { return std::chrono::system_clock::now(); }
  std::string hostname() const override { return gateway_.hostname; }
  std::string resolve_path(std::string_view path) const override;
  void submit(postern::new_message msg, postern::submit_callback done) override;
  postern::metrics& metrics() override;
  postern::plugin_store& store() override { return store_; }
  std::string route_of(const postern::message& msg, std::string_view recipient) override {
    return gateway_.route_of ? gateway_.route_of(msg, recipient) : std::string();
  }
  std::string unsubscribe_url(std::string_view tenant, std::string_view email, std::string_view list,
                              std::string_view campaign_id) override;

 private:
  std::string name_;
  config::toml_section section_;
  const gateway_services& gateway_;
  std::shared_ptr<spdlog::logger> logger_;
  plugin_data store_;
};

}  // namespace postern::plugin_host
