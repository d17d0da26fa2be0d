#include "ingress/http/json_reader.hpp"

#include <boost/json/stream_parser.hpp>

#include <boost/json/serialize.hpp>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace postern::ingress::http {

std::optional<std::string> json_reader::string(std::string_view key) {
  const auto* v = value(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) {
    fail(key, "expected a string");
    return std::nullopt;
  }
  return std::string(v->get_string());
}

bool json_reader::boolean(std::string_view key, bool fallback) {
  const auto* v = value(key);
  if (!v || v->is_null()) return fallback;
  if (!v->is_bool()) {
    fail(key, "expected true or false");
    return fallback;
  }
  return v->get_bool();
}

std::vector<std::string> json_reader::strings(std::string_view key) {
  std::vector<std::string> out;
  const auto* v = value(key);
  if (!v || v->is_null()) return out;
  if (v->is_string()) {
    out.emplace_back(v->get_string());
    return out;
  }
  if (!v->is_array()) {
    fail(key, "expected a string or a list of strings");
    return out;
  }
  const auto& array = v->get_array();
  for (std::size_t i = 0; i < array.size(); ++i) {
    if (!array[i].is_string()) {
      fail(std::string(key) + "[" + std::to_string(i) + "]", "expected a string");
      return {};
    }
    out.emplace_back(array[i].get_string());
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> json_reader::string_map(std::string_view key) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto* v = value(key);
  if (!v || v->is_null()) return out;
  if (!v->is_object()) {
    fail(key, "expected an object of strings");
    return out;
  }
  for (const auto& [k, item] : v->get_object()) {
    if (!item.is_string()) {
      fail(std::string(key) + "." + std::string(k), "expected a string");
      return {};
    }
    out.emplace_back(std::string(k), std::string(item.get_string()));
  }
  return out;
}

const boost::json::value* json_reader::value(std::string_view key) {
  known_.emplace(key);
  return object_.if_contains(key);
}

void json_reader::refuse_unknown_fields() {
  if (!ok()) return;
  for (const auto& [k, v] : object_) {
    if (!known_.count(std::string_view(k))) return fail(k, "unknown field");
  }
}

std::optional<std::int64_t> whole_number(std::string_view text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  std::int64_t value = 0;
  const auto end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end) return std::nullopt;
  return value;
}

std::size_t query_limit(std::string_view text) {
  return static_cast<std::size_t>(whole_number(text).value_or(0));
}

bool read_object_list(const boost::json::object& body, std::string_view key, std::size_t max,
                      const std::function<void(json_reader&)>& read_item, std::string& error) {
  json_reader top(body);
  const auto* list = top.value(key);
  top.refuse_unknown_fields();
  const std::string name(key);
  if (!top.ok()) error = top.error();
  else if (!list || !list->is_array()) error = name + ": expected a list of " + name;
  else if (list->get_array().size() > max) error = "at most " + std::to_string(max) + " " + name + " at once";
  if (!error.empty()) return false;
  for (std::size_t i = 0; i < list->get_array().size(); ++i) {
    const auto& item = list->get_array()[i];
    const auto item_name = name + "[" + std::to_string(i) + "]";
    if (!item.is_object()) {
      error = item_name + ": expected an object";
      return false;
    }
    json_reader r(item.get_object(), item_name + ".");
    read_item(r);
    if (!r.ok()) {
      error = r.error();
      return false;
    }
  }
  return true;
}

void json_reader::fail(std::string_view key, std::string_view message) {
  if (error_.empty()) error_ = name(key) + ": " + std::string(message);
}

std::optional<std::string> scalar_text(const boost::json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  if (v.is_double()) {
    // Shortest text that reads back as the same number, without an exponent for everyday values.
    char buffer[64];
    const auto r = std::to_chars(buffer, buffer + sizeof buffer, v.get_double(), std::chars_format::general, 17);
    std::string shortest(buffer, r.ptr);
    const auto plain = std::to_chars(buffer, buffer + sizeof buffer, v.get_double());
    return std::string(buffer, plain.ptr).size() <= shortest.size() ? std::string(buffer, plain.ptr) : shortest;
  }
  if (v.is_number() || v.is_bool()) return boost::json::serialize(v);
  return std::nullopt;
}

namespace {

/// Boost.JSON reads a number beyond the range of a double (1e999) as infinity, and writes it
/// back as `Infinity`, which is not JSON: a body that carries one would be stored, and later
/// served or sent, as text no JSON reader takes. Such a number is refused with the body.
bool all_numbers_finite(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::double_: return std::isfinite(v.get_double());
    case boost::json::kind::array:
      for (const auto& e : v.get_array()) {
        if (!all_numbers_finite(e)) return false;
      }
      return true;
    case boost::json::kind::object:
      for (const auto& [key, e] : v.get_object()) {
        if (!all_numbers_finite(e)) return false;
      }
      return true;
    default: return true;
  }
}

}  // namespace

parsed_json parse_json_object(std::string_view text) {
  parsed_json out;
  boost::json::stream_parser parser;
  boost::system::error_code ec;
  const std::size_t used = parser.write_some(text.data(), text.size(), ec);
  // Checked before finish(), which would call text after a complete value "incomplete JSON".
  if (!ec && used < text.size()) ec = boost::json::error::extra_data;
  if (!ec) parser.finish(ec);
  if (ec) {
    out.error = "malformed JSON at byte " + std::to_string(used) + ": " + ec.message();
    return out;
  }
  auto value = parser.release();
  if (!value.is_object()) {
    out.error = "the body must be a JSON object";
    return out;
  }
  // Nesting is bounded by the parser's max_depth (32), and so is this walk.
  if (!all_numbers_finite(value)) {
    out.error = "malformed JSON: a number is beyond the range of a double";
    return out;
  }
  out.object = std::move(value.get_object());
  return out;
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s) {
  // Fixed-width digits only: sscanf's %d would also take a sign, a space or a single digit,
  // so that "T-1:00:00Z" read as an hour of -1.
  const auto number = [s](std::size_t pos, std::size_t width) {
    if (pos + width > s.size()) return -1;
    int n = 0;
    for (std::size_t i = pos; i < pos + width; ++i) {
      if (s[i] < '0' || s[i] > '9') return -1;
      n = n * 10 + (s[i] - '0');
    }
    return n;
  };
  std::tm tm{};
  tm.tm_year = number(0, 4);
  tm.tm_mon = number(5, 2);
  tm.tm_mday = number(8, 2);
  tm.tm_hour = number(11, 2);
  tm.tm_min = number(14, 2);
  tm.tm_sec = number(17, 2);
  if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mday < 0 || tm.tm_hour < 0 || tm.tm_min < 0 || tm.tm_sec < 0 ||
      s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
    return std::nullopt;
  std::size_t pos = 19;
  long ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    // Milliseconds are kept (the API's own times have them); further digits are dropped.
    const std::size_t first = ++pos;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (pos - first < 3) ms = ms * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == first) return std::nullopt;
    for (std::size_t digits = pos - first; digits < 3; ++digits) ms *= 10;
  }
  long offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos + 6 == s.size() && (s[pos] == '+' || s[pos] == '-') && s[pos + 3] == ':') {
    const int h = number(pos + 1, 2), m = number(pos + 4, 2);
    if (h < 0 || h > 23 || m < 0 || m > 59) return std::nullopt;
    offset = (s[pos] == '+' ? 1 : -1) * (h * 3600L + m * 60L);
    pos += 6;
  } else {
    return std::nullopt;  // a time without a zone is ambiguous
  }
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (tm.tm_year % 4 == 0 && tm.tm_year % 100 != 0) || tm.tm_year % 400 == 0;
  if (pos != s.size() || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
      tm.tm_mday > days[tm.tm_mon - 1] + (tm.tm_mon == 2 && leap ? 1 : 0) || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t t = timegm(&tm) - offset;
  // The clock counts nanoseconds in 64 bits (1678 to 2262): a year beyond would wrap around.
  constexpr auto limit = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::duration::max());
  if (t >= limit.count() || t <= -limit.count()) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t) + std::chrono::milliseconds(ms);
}

std::string format_rfc3339(std::chrono::system_clock::time_point t) {
  // Floored, not truncated: before 1970 truncation gives the next second and a negative fraction.
  const auto ms = std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[40];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>((ms % 1000 + 1000) % 1000));
  return text;
}

}  // namespace postern::ingress::http
