#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace postern::config {

/// Parses a duration such as "90s", "15m", "1h30m", "5d" or "250ms". Nothing on bad input.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// Parses a size such as "10MiB", "512KiB", "1GiB" or a plain byte count. Nothing on bad input.
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace postern::config
