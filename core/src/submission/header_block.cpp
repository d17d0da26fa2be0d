#include "submission/header_block.hpp"

#include <cctype>
#include <ctime>

namespace postern::submission {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

/// A field-name is printable ASCII except colon (RFC 5322 §3.6.8); the line must have one.
bool starts_with_field_name(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && line[i] != ':') {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c <= 32 || c >= 127) return false;
    ++i;
  }
  return i > 0 && i < line.size();
}

/// Calls `visit(name, whole_field_with_crlf, offset)` for each field of the header section.
template <class Visit>
void for_each_field(std::string_view text, Visit visit) {
  const std::size_t end = header_section_length(text);
  std::size_t pos = 0;
  while (pos < end) {
    std::size_t field_end = text.find("\r\n", pos);
    while (field_end != std::string_view::npos && field_end + 2 < end &&
           (text[field_end + 2] == ' ' || text[field_end + 2] == '\t'))
      field_end = text.find("\r\n", field_end + 2);
    field_end = field_end == std::string_view::npos ? end : field_end + 2;
    std::string_view field = text.substr(pos, field_end - pos);
    const std::size_t colon = field.find(':');
    std::string_view name = field.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    visit(name, field, pos);
    pos = field_end;
  }
}

std::string unfold_value(std::string_view field) {
  std::string_view value = field.substr(field.find(':') + 1);
  std::string out;
  for (char c : value) {
    if (c != '\r' && c != '\n') out += c;
  }
  const auto first = out.find_first_not_of(" \t");
  const auto last = out.find_last_not_of(" \t");
  return first == std::string::npos ? std::string() : out.substr(first, last - first + 1);
}

}  // namespace

bool is_crlf(std::string_view text) {
  for (std::size_t pos = 0; (pos = text.find_first_of("\r\n", pos)) != std::string_view::npos; pos += 2) {
    if (text[pos] == '\n' || pos + 1 >= text.size() || text[pos + 1] != '\n') return false;
  }
  return true;
}

std::string to_crlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32);
  std::size_t pos = 0;
  while (pos < text.size()) {
    // Copy runs without line endings whole, then write one CRLF per line ending found.
    const std::size_t end = text.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) {
      out.append(text.substr(pos));
      break;
    }
    out.append(text.substr(pos, end - pos));
    out.append("\r\n");
    pos = end + 1;
    if (text[end] == '\r' && pos < text.size() && text[pos] == '\n') ++pos;
  }
  return out;
}

std::size_t header_section_length(std::string_view text) {
  std::size_t pos = 0;
  bool first = true;
  while (pos < text.size()) {
    const std::size_t eol = text.find("\r\n", pos);
    const std::size_t line_end = eol == std::string_view::npos ? text.size() : eol;
    std::string_view line = text.substr(pos, line_end - pos);
    if (line.empty()) return pos;  // the blank line ends the section
    const bool continuation = line[0] == ' ' || line[0] == '\t';
    if (continuation ? first : !starts_with_field_name(line)) return first ? 0 : pos;
    first = false;
    if (eol == std::string_view::npos) return text.size();
    pos = eol + 2;
  }
  return pos;
}

void ensure_header_section(std::string& text) {
  if (header_section_length(text) == 0 && !text.starts_with("\r\n")) text.insert(0, "\r\n");
}

std::vector<std::string> header_values(std::string_view text, std::string_view name) {
  std::vector<std::string> out;
  for_each_field(text, [&](std::string_view field_name, std::string_view field, std::size_t) {
    if (iequals(field_name, name)) out.push_back(unfold_value(field));
  });
  return out;
}

bool has_header(std::string_view text, std::string_view name) {
  bool found = false;
  for_each_field(text, [&](std::string_view field_name, std::string_view, std::size_t) {
    if (iequals(field_name, name)) found = true;
  });
  return found;
}

std::string remove_header(std::string_view text, std::string_view name) {
  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;
  for_each_field(text, [&](std::string_view field_name, std::string_view field, std::size_t offset) {
    if (!iequals(field_name, name)) return;
    out.append(text.substr(copied, offset - copied));
    copied = offset + field.size();
  });
  out.append(text.substr(copied));
  return out;
}

std::string format_field(std::string_view name, std::string_view value) {
  std::string out(name);
  out += ':';
  std::size_t line_length = out.size();
  std::size_t pos = 0;
  while (pos < value.size()) {
    while (pos < value.size() && value[pos] == ' ') ++pos;
    std::size_t word_end = value.find(' ', pos);
    if (word_end == std::string_view::npos) word_end = value.size();
    std::string_view word = value.substr(pos, word_end - pos);
    if (word.empty()) break;
    if (line_length + 1 + word.size() > 78 && line_length > name.size() + 1) {
      out += "\r\n\t";
      line_length = 1;
    } else {
      out += ' ';
      ++line_length;
    }
    out += word;
    line_length += word.size();
    pos = word_end;
  }
  return out + "\r\n";
}

std::string rfc5322_date(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buffer;
}

}  // namespace postern::submission
