#include "config/duration.hpp"

#include <cctype>
#include <charconv>
#include <string>

namespace postern::config {
namespace {

std::optional<std::int64_t> unit_ms(std::string_view unit) {
  if (unit == "ms") return 1;
  if (unit == "s") return 1000;
  if (unit == "m") return 60'000;
  if (unit == "h") return 3'600'000;
  if (unit == "d") return 86'400'000;
  return std::nullopt;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t total = 0;
  while (!text.empty()) {
    std::int64_t number = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (ec != std::errc{} || end == text.data() || number < 0) return std::nullopt;
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    std::size_t unit_len = 0;
    while (unit_len < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_len]))) ++unit_len;
    auto factor = unit_ms(text.substr(0, unit_len));
    if (!factor) return std::nullopt;
    total += number * *factor;
    text.remove_prefix(unit_len);
  }
  return std::chrono::milliseconds(total);
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc{} || end == text.data()) return std::nullopt;
  std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  if (unit.empty() || unit == "B") return number;
  if (unit == "KiB" || unit == "K") return number << 10;
  if (unit == "MiB" || unit == "M") return number << 20;
  if (unit == "GiB" || unit == "G") return number << 30;
  return std::nullopt;
}

}  // namespace postern::config
