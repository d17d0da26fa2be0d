#include "plugin_host/plugin_services.hpp"

#include "logging/log.hpp"
#include "telemetry/registry.hpp"

namespace postern::plugin_host {

plugin_services::plugin_services(std::string plugin_name, config::toml_section section, const gateway_services& gateway)
    : name_(std::move(plugin_name)),
      section_(std::move(section)),
      gateway_(gateway),
      logger_(logging::get("plugin." + name_)),
      store_(name_, gateway.data) {}

void plugin_services::log(postern::log_level level, std::string_view text) {
  logger_->log(logging::to_spdlog(level), "{}", text);
}

std::string plugin_services::resolve_path(std::string_view path) const {
  std::filesystem::path p(path);
  return (p.is_absolute() ? p : gateway_.data_dir / p).lexically_normal().string();
}

void plugin_services::submit(postern::new_message msg, postern::submit_callback done) {
  if (!gateway_.submit) {
    done({false, "", {451, "4.3.0", "this postern command cannot send mail"}});
    return;
  }
  gateway_.submit(std::move(msg), std::move(done), name_);
}

std::string plugin_services::unsubscribe_url(std::string_view tenant, std::string_view email, std::string_view list,
                                             std::string_view campaign_id) {
  return gateway_.unsubscribe_url ? gateway_.unsubscribe_url(tenant, email, list, campaign_id) : std::string();
}

postern::metrics& plugin_services::metrics() {
  if (gateway_.metrics) return *gateway_.metrics;
  // Contexts without a registry (one-shot commands) still get a working one.
  static telemetry::registry unused;
  return unused;
}

}  // namespace postern::plugin_host
