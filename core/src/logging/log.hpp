#pragma once

#include <postern/host.hpp>

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace postern::logging {

/// Sets up the process-wide logger: one line per event on stderr, at `level`
/// ("trace" … "error"). Call once at start-up; safe to call again to change the level.
void init(const std::string& level);

/// A named logger ("spool", "delivery", "plugin.file"), sharing the process-wide sink.
std::shared_ptr<spdlog::logger> get(const std::string& name);

/// Maps the SDK's log level onto spdlog's.
spdlog::level::level_enum to_spdlog(postern::log_level level);

}  // namespace postern::logging
