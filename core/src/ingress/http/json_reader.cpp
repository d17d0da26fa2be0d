#include "ingress/http/json_reader.hpp"

#include <boost/json/stream_parser.hpp>

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

std::optional<std::string> json_reader::unknown_field() const {
  for (const auto& [k, v] : object_) {
    if (!known_.count(std::string_view(k))) return prefix_ + std::string(k);
  }
  return std::nullopt;
}

void json_reader::fail(std::string_view key, std::string_view message) {
  if (error_.empty()) error_ = name(key) + ": " + std::string(message);
}

parsed_json parse_json_object(std::string_view text) {
  parsed_json out;
  boost::json::stream_parser parser;
  boost::system::error_code ec;
  const std::size_t used = parser.write_some(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (!ec && used < text.size()) ec = boost::json::error::extra_data;
  if (ec) {
    out.error = "malformed JSON at byte " + std::to_string(used) + ": " + ec.message();
    return out;
  }
  auto value = parser.release();
  if (!value.is_object()) {
    out.error = "the body must be a JSON object";
    return out;
  }
  out.object = std::move(value.get_object());
  return out;
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text) {
  const std::string s(text);
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) != 6)
    return std::nullopt;
  std::size_t pos = static_cast<std::size_t>(consumed);
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) ++pos;
  }
  long offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos + 6 == s.size() && (s[pos] == '+' || s[pos] == '-') && s[pos + 3] == ':') {
    int h = 0, m = 0;
    if (std::sscanf(s.c_str() + pos + 1, "%2d:%2d", &h, &m) != 2) return std::nullopt;
    offset = (s[pos] == '+' ? 1 : -1) * (h * 3600L + m * 60L);
    pos += 6;
  } else {
    return std::nullopt;  // a time without a zone is ambiguous
  }
  if (pos != s.size() || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t t = timegm(&tm) - offset;
  return std::chrono::system_clock::from_time_t(t);
}

std::string format_rfc3339(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[40];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return text;
}

}  // namespace postern::ingress::http
