#pragma once
// A plugin's config section that answers from values the test sets, as a TOML section does:
// each getter answers only for a value of its own type, has() for any key that is set. It is
// the mock underneath, so a test may still EXPECT_CALL on it.

#include "mocks/mock_host.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace postern::testing {

using config_value = std::variant<std::string, std::int64_t, bool, std::vector<std::string>>;

class config_values : public ::testing::NiceMock<mock_config_section> {
 public:
  explicit config_values(std::string origin) {
    using ::testing::_;
    ON_CALL(*this, has(_)).WillByDefault([this](std::string_view k) { return values_.count(k) > 0; });
    ON_CALL(*this, get_string(_)).WillByDefault([this](std::string_view k) { return find<std::string>(k); });
    ON_CALL(*this, get_int(_)).WillByDefault([this](std::string_view k) { return find<std::int64_t>(k); });
    ON_CALL(*this, get_bool(_)).WillByDefault([this](std::string_view k) { return find<bool>(k); });
    ON_CALL(*this, get_strings(_)).WillByDefault([this](std::string_view k) {
      return find<std::vector<std::string>>(k).value_or(std::vector<std::string>{});
    });
    ON_CALL(*this, origin()).WillByDefault(::testing::Return(std::move(origin)));
  }

  // Named per type: a braced list or a string literal would otherwise pick a surprising one.
  void set(std::string key, std::string value) { values_[std::move(key)] = std::move(value); }
  void set(std::string key, const char* value) { values_[std::move(key)] = std::string(value); }
  void set(std::string key, std::int64_t value) { values_[std::move(key)] = value; }
  void set(std::string key, int value) { values_[std::move(key)] = std::int64_t{value}; }
  void set(std::string key, bool value) { values_[std::move(key)] = value; }
  void set_list(std::string key, std::vector<std::string> value) { values_[std::move(key)] = std::move(value); }
  void set(std::string key, config_value value) { values_[std::move(key)] = std::move(value); }
  void erase(std::string_view key) {
    if (auto it = values_.find(key); it != values_.end()) values_.erase(it);
  }
  /// Replaces every value at once.
  void assign(const std::map<std::string, config_value>& values) {
    values_.clear();
    values_.insert(values.begin(), values.end());
  }

 private:
  template <class T>
  std::optional<T> find(std::string_view key) const {
    auto it = values_.find(key);
    if (it == values_.end() || !std::holds_alternative<T>(it->second)) return std::nullopt;
    return std::get<T>(it->second);
  }

  std::map<std::string, config_value, std::less<>> values_;
};

}  // namespace postern::testing
