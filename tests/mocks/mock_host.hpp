#pragma once

#include <postern/host.hpp>

#include <gmock/gmock.h>

namespace postern::testing {

class mock_config_section : public postern::config_section {
 public:
  MOCK_METHOD(std::optional<std::string>, get_string, (std::string_view key), (const, override));
  MOCK_METHOD(std::optional<std::int64_t>, get_int, (std::string_view key), (const, override));
  MOCK_METHOD(std::optional<bool>, get_bool, (std::string_view key), (const, override));
  MOCK_METHOD(std::vector<std::string>, get_strings, (std::string_view key), (const, override));
  MOCK_METHOD(bool, has, (std::string_view key), (const, override));
  MOCK_METHOD(std::string, origin, (), (const, override));
};

class mock_metrics : public postern::metrics {
 public:
  MOCK_METHOD(void, add, (std::string_view name, double value, const postern::metric_labels& labels), (override));
  MOCK_METHOD(void, observe, (std::string_view name, double value, const postern::metric_labels& labels), (override));
};

class mock_plugin_store : public postern::plugin_store {
 public:
  MOCK_METHOD(std::optional<std::string>, get, (std::string_view key), (override));
  MOCK_METHOD(void, put, (std::string_view key, std::string_view value), (override));
  MOCK_METHOD(bool, put_new, (std::string_view key, std::string_view value), (override));
  MOCK_METHOD(std::optional<std::int64_t>, add, (std::string_view key, std::int64_t delta, std::int64_t ceiling),
              (override));
  MOCK_METHOD(void, erase, (std::string_view key), (override));
};

class mock_host : public postern::host {
 public:
  MOCK_METHOD(void, log, (postern::log_level level, std::string_view text), (override));
  MOCK_METHOD(const postern::config_section&, config, (), (const, override));
  MOCK_METHOD(std::chrono::system_clock::time_point, now, (), (const, override));
  MOCK_METHOD(std::string, hostname, (), (const, override));
  MOCK_METHOD(std::string, resolve_path, (std::string_view path), (const, override));
  MOCK_METHOD(void, submit, (postern::new_message msg, postern::submit_callback done), (override));
  MOCK_METHOD(postern::metrics&, metrics, (), (override));
  MOCK_METHOD(postern::plugin_store&, store, (), (override));
  MOCK_METHOD(std::string, route_of, (const postern::message& msg, std::string_view recipient), (override));
  MOCK_METHOD(std::string, unsubscribe_url,
              (std::string_view tenant, std::string_view email, std::string_view list, std::string_view campaign_id),
              (override));
};

}  // namespace postern::testing
