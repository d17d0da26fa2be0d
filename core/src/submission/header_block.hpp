#pragma once
// Just enough RFC 5322 header handling for submission: find the header section, look up,
// remove and prepend fields, normalise line endings. Written by hand rather than with a MIME
// library because it must not parse or copy the body: a 20 MiB message is scanned only up to
// its blank line.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::submission {

/// Converts bare LF and bare CR line endings to CRLF (local submissions use LF).
std::string to_crlf(std::string_view text);
/// True if every line ending is already CRLF (then no conversion, and no copy, is needed).
bool is_crlf(std::string_view text);

/// Length of the header section including its final CRLF, not counting the blank line that
/// follows. 0 when the text does not start with a header field (it is then all body).
std::size_t header_section_length(std::string_view crlf_text);

/// Gives a text without a header section an empty one (a leading CRLF), so that fields can
/// be prepended without gluing the body's first line to them.
void ensure_header_section(std::string& crlf_text);

/// Values of every field named `name` (case-insensitive), unfolded, in order.
std::vector<std::string> header_values(std::string_view crlf_text, std::string_view name);

/// True if a field named `name` exists in the header section.
bool has_header(std::string_view crlf_text, std::string_view name);

/// The text with every field named `name` removed from the header section.
std::string remove_header(std::string_view crlf_text, std::string_view name);

/// Formats one header field, folded at whitespace to keep lines under 78 octets where possible.
std::string format_field(std::string_view name, std::string_view value);

/// An RFC 5322 date-time in UTC: "Tue, 24 Nov 2026 08:15:08 +0000".
std::string rfc5322_date(std::chrono::system_clock::time_point t);

}  // namespace postern::submission
