#pragma once
/// @file settings.hpp
/// The `[transports.smtp]` section, read and checked once when the transport is made.

#include <postern/host.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::transports::smtp {

/// One relay (smarthost) to deliver through.
struct relay_address {
  std::string host;  ///< A host name, or an IP address (without brackets).
  std::uint16_t port = 25;
  bool literal = false;  ///< `host` is an IP address.

  /// "host:port", with brackets around an IPv6 address: for logs and replies.
  std::string text() const;
};

/// The outcome of parsing one relay: the address, or why the text is not one.
struct relay_parse_result {
  bool ok = false;
  relay_address address;
  std::string error;  ///< When !ok: what is wrong, without the text itself.
};

/// Parses "host", "host:port", "1.2.3.4:587", "[1.2.3.4]:587", "[2001:db8::1]:25" or
/// "[ipv6:2001:db8::1]". The port defaults to 25.
relay_parse_result parse_relay_address(std::string_view text);

/// How STARTTLS is used.
enum class tls_mode {
  required,       ///< Every connection must be upgraded, or nothing is sent.
  opportunistic,  ///< Upgraded when the relay offers STARTTLS; in clear text otherwise.
  none,           ///< Never upgraded.
};

/// Every setting of the smtp transport, with its default. README.md lists them.
struct settings {
  std::vector<relay_address> relays;       ///< Tried in order; empty: the transport is unavailable.
  std::string helo_name;                   ///< Default: the gateway's host name.
  tls_mode tls = tls_mode::opportunistic;  ///< Default: required when credentials are set.
  bool tls_verify = true;                  ///< Check the relay's certificate and its name.
  std::string tls_ca_file;                 ///< CA certificates (PEM) to trust instead of the system's.
  std::string tls_server_name;             ///< Name to verify and send as SNI; default: the relay host.
  std::string username;                    ///< Empty: no AUTH.
  std::string password;                    ///< From `password` or the variable `password_env` names.
  bool allow_auth_without_tls = false;     ///< Permit AUTH on a connection without TLS.
  std::size_t max_connections = 10;        ///< Per relay host.
  std::size_t max_recipients = 100;        ///< Per transaction; more recipients make more transactions.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds helo_timeout{std::chrono::seconds(60)};        ///< Greeting, EHLO, STARTTLS, AUTH.
  std::chrono::milliseconds command_timeout{std::chrono::seconds(60)};     ///< RSET, MAIL, RCPT, DATA.
  std::chrono::milliseconds data_timeout{std::chrono::seconds(120)};       ///< Each block of content sent.
  std::chrono::milliseconds data_done_timeout{std::chrono::seconds(300)};  ///< The reply to the final ".".
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(30)};        ///< An unused connection is closed.
  std::chrono::milliseconds probe_timeout{std::chrono::seconds(5)};        ///< probe(): per relay.
};

/// Reads the section from `host.config()`; relative paths through `host.resolve_path`, the
/// default HELO name from `host.hostname()`, `password_env` from the process environment.
/// Throws std::invalid_argument naming the section and the key for a value that can never
/// work (a bad relay, an unknown tls mode, credentials without a password, AUTH that would go
/// out in clear text, a zero limit). Missing relays are not an error here: probe() reports them.
settings read_settings(const postern::host& host);

}  // namespace postern::transports::smtp
