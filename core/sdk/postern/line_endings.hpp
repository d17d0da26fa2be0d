#pragma once
/// @file line_endings.hpp
/// Messages reach transports with CRLF line endings (RFC 5322); local sinks (files, a pipe to
/// a sendmail binary) usually want LF. Header-only: no ABI surface.

#include <string>
#include <string_view>

namespace postern {

/// The text with every CRLF made LF; a CR or LF on its own stays as it is. Thread-safe, pure.
inline std::string to_lf(std::string_view crlf) {
  std::string out;
  out.reserve(crlf.size());
  for (std::size_t i = 0; i < crlf.size(); ++i) {
    if (crlf[i] == '\r' && i + 1 < crlf.size() && crlf[i + 1] == '\n') continue;
    out += crlf[i];
  }
  return out;
}

}  // namespace postern
