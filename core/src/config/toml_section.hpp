#pragma once

#include <postern/host.hpp>

#include <toml++/toml.h>

namespace postern::config {

/// A plugin's configuration section, read from a TOML table the section owns (a copy, so
/// the plugin may keep the reference as long as it lives).
class toml_section final : public postern::config_section {
 public:
  toml_section(toml::table table, std::string origin);

  std::optional<std::string> get_string(std::string_view key) const override;
  std::optional<std::int64_t> get_int(std::string_view key) const override;
  std::optional<bool> get_bool(std::string_view key) const override;
  std::vector<std::string> get_strings(std::string_view key) const override;
  bool has(std::string_view key) const override;
  std::string origin() const override;

 private:
  toml::node_view<const toml::node> find(std::string_view key) const;

  toml::table table_;
  std::string origin_;
};

}  // namespace postern::config
