#include "settings.hpp"

#include <postern/duration.hpp>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <stdexcept>

namespace postern::transports::smtp {
namespace {

bool valid_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') return false;
  }
  return host.front() != '.' && host.front() != '-';
}

/// Reads the section, and says which key is wrong when a value is.
class reader {
 public:
  explicit reader(const postern::config_section& config) : config_(config), origin_(config.origin()) {}

  [[noreturn]] void fail(std::string_view key, const std::string& problem) const {
    throw std::invalid_argument(origin_ + ": " + std::string(key) + " " + problem);
  }

  std::optional<std::string> string(std::string_view key) const {
    auto value = config_.get_string(key);
    if (!value && config_.has(key)) fail(key, "must be a string");
    return value;
  }

  bool boolean(std::string_view key, bool fallback) const {
    auto value = config_.get_bool(key);
    if (!value && config_.has(key)) fail(key, "must be true or false");
    return value.value_or(fallback);
  }

  std::size_t count(std::string_view key, std::size_t fallback, std::int64_t max) const {
    auto value = config_.get_int(key);
    if (!value) {
      if (config_.has(key)) fail(key, "must be an integer");
      return fallback;
    }
    if (*value < 1 || *value > max)
      fail(key, "must be between 1 and " + std::to_string(max) + ", not " + std::to_string(*value));
    return static_cast<std::size_t>(*value);
  }

  std::chrono::milliseconds duration(std::string_view key, std::chrono::milliseconds fallback) const {
    // Read as the gateway's own settings are (postern/duration.hpp): seconds, or "30s", "5m".
    if (!config_.has(key)) return fallback;
    const auto value = postern::duration_setting(config_, key);
    if (!value)
      fail(key, "must be a positive duration: a number of seconds, or a string such as \"30s\", \"5m\" or \"500ms\"");
    return *value;
  }

  std::vector<std::string> strings(std::string_view key) const {
    // A single relay may be written as a plain string.
    if (auto one = config_.get_string(key)) return {*one};
    auto list = config_.get_strings(key);
    // An empty list, or one of numbers, cannot be told apart here: neither names a relay.
    if (list.empty() && config_.has(key))
      fail(key, "must be a list of \"host[:port]\" strings, such as [\"smtp.example.com:587\"]");
    return list;
  }

  const postern::config_section& config() const { return config_; }

 private:
  const postern::config_section& config_;
  std::string origin_;
};

}  // namespace

std::string relay_address::text() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

relay_parse_result parse_relay_address(std::string_view text) {
  relay_parse_result out;
  auto fail = [&out](std::string why) {
    out.ok = false;
    out.error = std::move(why);
    return out;
  };
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (text.empty()) return fail("is empty");
  std::string_view host;
  std::string_view port;
  if (text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return fail("has \"[\" without \"]\"");
    host = text.substr(1, close - 1);
    const auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail("has text after \"]\" that is not \":port\"");
      port = rest.substr(1);
      if (port.empty()) return fail("has \":\" without a port");
    }
    if (host.size() > 5 && (host.substr(0, 5) == "ipv6:" || host.substr(0, 5) == "IPv6:")) host.remove_prefix(5);
    boost::system::error_code ec;
    boost::asio::ip::make_address(std::string(host), ec);
    if (ec) return fail("has \"[" + std::string(host) + "]\", which is not an IP address");
    out.address.literal = true;
  } else {
    const auto colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos)
      return fail("looks like an IPv6 address: write it in brackets, as \"[2001:db8::1]:25\"");
    host = text.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = text.substr(colon + 1);
      if (port.empty()) return fail("has \":\" without a port");
    }
    if (!valid_host_name(host)) return fail("is not a host name (letters, digits, \"-\", \".\")");
    boost::system::error_code ec;
    boost::asio::ip::make_address_v4(std::string(host), ec);
    out.address.literal = !ec;
  }
  if (!port.empty()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || end != port.data() + port.size() || value < 1 || value > 65535)
      return fail("has port \"" + std::string(port) + "\"; a port is a number from 1 to 65535");
    out.address.port = static_cast<std::uint16_t>(value);
  }
  out.address.host.assign(host);
  out.ok = true;
  return out;
}

settings read_settings(const postern::host& host) {
  const reader in(host.config());
  settings s;

  for (const auto& text : in.strings("relays")) {
    auto parsed = parse_relay_address(text);
    if (!parsed.ok) in.fail("relays", "entry \"" + text + "\" " + parsed.error);
    s.relays.push_back(std::move(parsed.address));
  }

  s.helo_name = in.string("helo_name").value_or(host.hostname());
  if (s.helo_name.empty()) s.helo_name = "localhost";
  for (char c : s.helo_name) {
    if (static_cast<unsigned char>(c) <= 32 || c == 127)
      in.fail("helo_name", "must be a host name without spaces or control characters");
  }

  s.username = in.string("username").value_or("");
  const auto password = in.string("password");
  const auto password_env = in.string("password_env");
  if (password && password_env) in.fail("password_env", "cannot be set together with password: choose one");
  if (password) s.password = *password;
  if (password_env) {
    const char* value = std::getenv(password_env->c_str());
    if (!value) in.fail("password_env", "names the environment variable " + *password_env + ", which is not set");
    s.password = value;
  }
  if (!s.username.empty() && s.password.empty())
    in.fail("password", "is missing: username is set, so set password or password_env too");
  if (s.username.empty() && (password || password_env))
    in.fail("username", "is missing: a password is set, but no username to go with it");

  const bool authenticating = !s.username.empty();
  // With credentials, TLS is required unless the operator says otherwise: they must not leak.
  const auto tls = in.string("tls").value_or(authenticating ? "required" : "opportunistic");
  if (tls == "required")
    s.tls = tls_mode::required;
  else if (tls == "opportunistic")
    s.tls = tls_mode::opportunistic;
  else if (tls == "none")
    s.tls = tls_mode::none;
  else
    in.fail("tls", "must be \"required\", \"opportunistic\" or \"none\", not \"" + tls + "\"");

  s.allow_auth_without_tls = in.boolean("allow_auth_without_tls", false);
  if (authenticating && s.tls == tls_mode::none && !s.allow_auth_without_tls)
    in.fail("tls",
            "is \"none\" while username is set: the password would go out in clear text "
            "(use tls = \"required\", or set allow_auth_without_tls = true if you must)");

  s.tls_verify = in.boolean("tls_verify", true);
  if (auto ca = in.string("tls_ca_file"); ca && !ca->empty()) s.tls_ca_file = host.resolve_path(*ca);
  s.tls_server_name = in.string("tls_server_name").value_or("");
  if (!s.tls_server_name.empty() && !valid_host_name(s.tls_server_name))
    in.fail("tls_server_name", "is not a host name: \"" + s.tls_server_name + "\"");

  s.max_connections = in.count("max_connections", s.max_connections, 1000);
  s.max_recipients = in.count("max_recipients", s.max_recipients, 100000);

  s.connect_timeout = in.duration("connect_timeout", s.connect_timeout);
  s.helo_timeout = in.duration("helo_timeout", s.helo_timeout);
  s.command_timeout = in.duration("command_timeout", s.command_timeout);
  s.data_timeout = in.duration("data_timeout", s.data_timeout);
  s.data_done_timeout = in.duration("data_done_timeout", s.data_done_timeout);
  s.idle_timeout = in.duration("idle_timeout", s.idle_timeout);
  s.probe_timeout = in.duration("probe_timeout", s.probe_timeout);
  return s;
}

}  // namespace postern::transports::smtp
