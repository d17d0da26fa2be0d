#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace postern::ingress::http {

/// Reads fields of one JSON object for an API request, collecting the first problem as a
/// message that names the field ("to[2]: expected a string"). Every field read is remembered,
/// so that fields the API does not know can be refused by name.
class json_reader {
 public:
  explicit json_reader(const boost::json::object& object, std::string prefix = "")
      : object_(object), prefix_(std::move(prefix)) {}

  std::optional<std::string> string(std::string_view key);
  bool boolean(std::string_view key, bool fallback);
  /// A string or a list of strings; both give a list.
  std::vector<std::string> strings(std::string_view key);
  /// An object of string values, in the order given.
  std::vector<std::pair<std::string, std::string>> string_map(std::string_view key);
  /// The raw value, for nested reading; nullptr when absent.
  const boost::json::value* value(std::string_view key);

  /// Fails with "NAME: unknown field" for the first field not read so far, if any and if
  /// nothing failed before. Call it once every known field was read.
  void refuse_unknown_fields();
  void fail(std::string_view key, std::string_view message);
  /// Takes over the first problem of a reader of a nested object (its names are full already).
  void adopt(const json_reader& nested) {
    if (error_.empty()) error_ = nested.error_;
  }
  bool ok() const noexcept { return error_.empty(); }
  const std::string& error() const noexcept { return error_; }
  std::string name(std::string_view key) const { return prefix_ + std::string(key); }

 private:
  const boost::json::object& object_;
  std::string prefix_;
  std::set<std::string, std::less<>> known_;
  std::string error_;
};

/// Reads a body that is {KEY: [objects]} and nothing else, with at most `max` objects: each
/// is handed to `read_item` with a reader whose names start "KEY[i].", which records its
/// problems in that reader. False with `error` naming the first problem ("KEY: expected a list of KEY",
/// "at most N KEY at once", "other: unknown field", or the item's).
bool read_object_list(const boost::json::object& body, std::string_view key, std::size_t max,
                      const std::function<void(json_reader&)>& read_item, std::string& error);

/// Parses a JSON text into an object, or says where and why it is not one.
struct parsed_json {
  boost::json::object object;
  std::string error;
};
parsed_json parse_json_object(std::string_view text);

/// A JSON scalar as text for a message: strings as they are, numbers in plain notation
/// (19.99, not 1.999E1), true/false; nothing for arrays, objects and null.
std::optional<std::string> scalar_text(const boost::json::value& v);

/// A query parameter that is a whole number: decimal digits only, within a signed 64-bit
/// integer; nothing for anything else ("", "-1", "3x", twenty digits).
std::optional<std::int64_t> whole_number(std::string_view text);

/// A `limit` query parameter: its whole number, or 0 (which every range check refuses) for
/// anything else, so that "10abc" is an error rather than 10.
std::size_t query_limit(std::string_view text);

/// RFC 3339 date-time ("2026-11-24T10:00:00Z", "…+02:00", fractions allowed).
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);
std::string format_rfc3339(std::chrono::system_clock::time_point t);

}  // namespace postern::ingress::http
