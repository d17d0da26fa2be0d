#include "logging/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>

namespace postern::logging {
namespace {

std::mutex mutex;
spdlog::sink_ptr shared_sink;
spdlog::level::level_enum current_level = spdlog::level::info;

spdlog::sink_ptr sink() {
  if (!shared_sink) {
    // stderr, unbuffered and not colored: the lines go to journald or a test's capture.
    shared_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    shared_sink->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ [%n] %v");
  }
  return shared_sink;
}

}  // namespace

void init(const std::string& level) {
  std::lock_guard lock(mutex);
  current_level = spdlog::level::from_str(level);
  auto root = std::make_shared<spdlog::logger>("postern", sink());
  root->set_level(current_level);
  spdlog::set_default_logger(root);
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->set_level(current_level); });
}

std::shared_ptr<spdlog::logger> get(const std::string& name) {
  std::lock_guard lock(mutex);
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = std::make_shared<spdlog::logger>(name, sink());
  logger->set_level(current_level);
  spdlog::register_logger(logger);
  return logger;
}

spdlog::level::level_enum to_spdlog(postern::log_level level) {
  switch (level) {
    case postern::log_level::trace: return spdlog::level::trace;
    case postern::log_level::debug: return spdlog::level::debug;
    case postern::log_level::info: return spdlog::level::info;
    case postern::log_level::warn: return spdlog::level::warn;
    case postern::log_level::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace postern::logging
