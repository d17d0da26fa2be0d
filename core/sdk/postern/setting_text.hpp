#pragma once
/// @file setting_text.hpp
/// Values written as TOML writes them, for `policy::settings()`: what `postern plugins` shows
/// is what a user would put in the config. Header-only: no ABI surface.

#include <concepts>
#include <string>
#include <string_view>
#include <vector>

namespace postern {

/// A TOML basic string: in double quotes, with `"`, `\` and control characters escaped.
/// Thread-safe, pure.
inline std::string setting_text(std::string_view text) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\u00";
      out += digits[c >> 4];
      out += digits[c & 15];
    } else {
      out += ch;
    }
  }
  return out + '"';
}

/// A TOML array of strings: `["a", "b"]`, `[]` when empty. Thread-safe, pure.
inline std::string setting_text(const std::vector<std::string>& list) {
  std::string out = "[";
  for (std::size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + setting_text(list[i]);
  return out + ']';
}

/// `true` or `false`. Only for a bool: a string literal must not turn into `true`.
/// Thread-safe, pure.
template <class Bool>
  requires std::same_as<Bool, bool>
inline std::string setting_text(Bool value) {
  return value ? "true" : "false";
}

}  // namespace postern
