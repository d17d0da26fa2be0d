#include "config/toml_section.hpp"

namespace postern::config {

toml_section::toml_section(toml::table table, std::string origin)
    : table_(std::move(table)), origin_(std::move(origin)) {}

toml::node_view<const toml::node> toml_section::find(std::string_view key) const {
  return table_.at_path(key);
}

std::optional<std::string> toml_section::get_string(std::string_view key) const {
  return find(key).value<std::string>();
}

std::optional<std::int64_t> toml_section::get_int(std::string_view key) const {
  return find(key).value<std::int64_t>();
}

std::optional<bool> toml_section::get_bool(std::string_view key) const {
  return find(key).value<bool>();
}

std::vector<std::string> toml_section::get_strings(std::string_view key) const {
  std::vector<std::string> out;
  if (const toml::array* array = find(key).as_array()) {
    for (const toml::node& element : *array) {
      if (auto s = element.value<std::string>()) out.push_back(*s);
    }
  }
  return out;
}

bool toml_section::has(std::string_view key) const { return static_cast<bool>(find(key)); }

std::string toml_section::origin() const { return origin_; }

}  // namespace postern::config
