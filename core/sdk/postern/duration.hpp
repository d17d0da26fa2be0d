#pragma once
/// @file duration.hpp
/// Reading a duration setting the way postern's own configuration writes them, so that a
/// plugin's `timeout = "30s"` reads like the gateway's. Header-only: no ABI surface.
/// (duration_setting uses config_section, whose layout is part of the ABI already.)

#include <postern/host.hpp>

#include <cctype>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace postern {

/// A positive duration: whole numbers with a unit each (ms, s, m, h, d), parts adding up
/// ("1m30s"). Nothing for an empty, zero, unit-less or malformed text. Thread-safe, pure.
inline std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::chrono::milliseconds total{0};
  if (text.empty()) return std::nullopt;
  while (!text.empty()) {
    std::size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    if (digits == 0 || digits > 9) return std::nullopt;
    const long long n = std::stoll(std::string(text.substr(0, digits)));
    text.remove_prefix(digits);
    std::size_t unit = 0;
    while (unit < text.size() && std::isalpha(static_cast<unsigned char>(text[unit]))) ++unit;
    const auto u = text.substr(0, unit);
    text.remove_prefix(unit);
    if (u == "ms") total += std::chrono::milliseconds(n);
    else if (u == "s") total += std::chrono::seconds(n);
    else if (u == "m") total += std::chrono::minutes(n);
    else if (u == "h") total += std::chrono::hours(n);
    else if (u == "d") total += std::chrono::hours(24 * n);
    else return std::nullopt;
  }
  if (total.count() <= 0) return std::nullopt;
  return total;
}

/// A duration setting as plugins take them: an integer number of seconds, or a text that
/// parse_duration reads ("30s", "2m"). Call it for a key the section has; nothing when the
/// value is not a positive duration (the plugin then refuses the setting, naming it).
inline std::optional<std::chrono::milliseconds> duration_setting(const config_section& config, std::string_view key) {
  if (auto seconds = config.get_int(key)) {
    if (*seconds <= 0) return std::nullopt;
    return std::chrono::seconds(*seconds);
  }
  if (auto text = config.get_string(key)) return parse_duration(*text);
  return std::nullopt;
}

}  // namespace postern
