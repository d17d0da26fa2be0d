#pragma once
/// @file xtext.hpp
/// RFC 3461 §4 "xtext", the encoding of the DSN parameters ENVID and ORCPT on the SMTP command
/// line. postern keeps them decoded (`envelope::envid`, `recipient::orcpt`); a transport that
/// speaks SMTP encodes them again. Header-only: no ABI surface.

#include <optional>
#include <string>
#include <string_view>

namespace postern {

/// Printable ASCII other than "+" and "=" as it is; every other octet as "+XX" (upper-case
/// hex). Thread-safe, pure.
inline std::string encode_xtext(std::string_view text) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 33 || c > 126 || c == '+' || c == '=') {
      out += '+';
      out += digits[c >> 4];
      out += digits[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

/// The octets `text` encodes, or nothing when it is not xtext (a character outside
/// printable ASCII, a bare "=", or a "+" not followed by two upper-case hex digits).
/// Thread-safe, pure.
inline std::optional<std::string> decode_xtext(std::string_view text) {
  const auto hex = [](char h) -> int {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 33 || c > 126 || c == '=') return std::nullopt;
    if (c != '+') {
      out += static_cast<char>(c);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int high = hex(text[i + 1]), low = hex(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

}  // namespace postern
