#pragma once

#include <postern/types.hpp>

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace postern::config {

/// One problem found in a configuration file: where it is and what is wrong.
struct config_error {
  std::string file;
  std::uint32_t line = 0;    ///< 1-based; 0 when the problem has no single place.
  std::uint32_t column = 0;
  std::string key;           ///< Dotted key, e.g. "delivery.max_age".
  std::string message;

  /// "file:line:column: key: message", the format of compiler diagnostics.
  std::string to_string() const;
};

struct server_settings {
  std::string hostname;                      ///< Default: the system's host name.
  std::filesystem::path data_dir;            ///< Absolute after loading.
  std::string log_level = "info";
  std::vector<std::filesystem::path> plugin_dirs;  ///< Absolute after loading.
  std::size_t threads = 0;                   ///< Threads running network I/O; 0: one per core.
};

struct submission_settings {
  std::string local_tenant = "default";      ///< Tenant of mail from `postern sendmail`.
  std::uint64_t max_message_size = 50ull << 20;
};

struct spool_settings {
  std::filesystem::path dir;                 ///< Absolute after loading.
  std::size_t max_batch = 1024;              ///< Submissions per group commit at most.
  std::chrono::milliseconds keep_content = std::chrono::hours(72);  ///< Finished messages' content, for resends.
  /// Finished messages with their recipients and events: `queue show`, the message API and
  /// the event feed see them this long. At least keep_content.
  std::chrono::milliseconds keep_history = std::chrono::hours(24 * 30);
};

/// `[[delivery.routes]]`: which transports serve which mail. Every matcher given must match
/// (a list matches when any of its values does); an empty matcher matches everything.
struct route_settings {
  std::string name;
  std::vector<std::string> streams;            ///< "transactional", "marketing"
  std::vector<std::string> tenants;
  std::vector<std::string> sender_domains;
  std::vector<std::string> recipient_domains;
  std::vector<std::string> tags;
  std::vector<std::string> transports;         ///< Tried in order: the first available serves.
};

/// `[[delivery.limits]]`: concurrency and rate for one transport or one recipient domain.
struct limit_settings {
  std::string transport;        ///< Either this ...
  std::string domain;           ///< ... or this.
  std::size_t concurrency = 0;  ///< Deliveries at the same time; 0: no limit.
  double rate = 0;              ///< Messages per second; 0: no limit.
};

struct delivery_settings {
  std::vector<std::string> transports;       ///< Priority order; empty: the built-in order.
  std::vector<route_settings> routes;
  std::vector<limit_settings> limits;
  std::vector<std::chrono::milliseconds> retry_schedule;
  double jitter = 0.2;
  std::chrono::milliseconds max_age = std::chrono::hours(24 * 5);
  std::size_t max_parallel = 32;             ///< Delivery attempts in flight at most.
  std::size_t workers = 4;                   ///< Threads that run transports.
  std::chrono::milliseconds poll_interval = std::chrono::seconds(1);
};

/// `[smtp]`: the SMTP submission listener (RFC 5321 with the extensions in docs/smtp.md).
struct smtp_settings {
  std::vector<std::string> listen;              ///< "host:port"; empty: no SMTP listener.
  std::vector<std::string> tls_listen;          ///< Implicit TLS ("465-style", RFC 8314).
  std::size_t max_recipients = 1000;
  std::size_t max_connections = 1000;
  std::size_t max_connections_per_client = 100;
  std::size_t max_errors = 10;
  std::chrono::milliseconds command_timeout = std::chrono::minutes(5);   ///< RFC 5321 §4.5.3.2
  std::chrono::milliseconds data_timeout = std::chrono::minutes(3);      ///< per data block
  std::vector<std::string> trusted_networks;    ///< CIDR blocks that may send without AUTH.
  std::string trusted_tenant;                   ///< Tenant of mail from trusted networks.
  bool auth_without_tls = false;                ///< Offer AUTH on cleartext connections.
  std::string bare_line_endings = "normalise";  ///< "normalise" or "reject".
  std::size_t auth_max_failures = 5;
  std::chrono::milliseconds auth_failure_window = std::chrono::minutes(5);
  std::chrono::milliseconds auth_failure_delay = std::chrono::seconds(1);
};

/// `[http]`: the REST API listener (docs/rest-api.md).
struct http_settings {
  std::vector<std::string> listen;              ///< "host:port"; empty: no HTTP listener.
  std::vector<std::string> tls_listen;          ///< HTTPS, with the [tls] certificate.
  std::uint64_t max_body_size = 0;              ///< 0: what the largest message needs, base64 included.
  std::size_t max_connections = 1000;
  std::chrono::milliseconds request_timeout = std::chrono::seconds(30);  ///< to read one request
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);     ///< between requests
  double rate_limit = 0;                        ///< Requests per second per tenant; 0: no limit.
  double rate_burst = 0;                        ///< Bucket size; 0: twice the rate.
  bool webhooks_to_private_networks = false;    ///< Let webhook URLs reach loopback and private addresses.
  /// How recipients reach this server (unsubscribe links), e.g. "https://mail.shop.example";
  /// empty: "http://" and the first listen address.
  std::string public_url;
};

/// `[tls]`: certificate and key for STARTTLS and implicit TLS.
struct tls_settings {
  std::filesystem::path certificate;            ///< PEM chain; empty: no TLS.
  std::filesystem::path private_key;
};

/// One SMTP login of a tenant. Only the Argon2id hash is kept (libsodium's crypto_pwhash_str).
struct smtp_user {
  std::string user;
  std::string password_hash;
};

/// One REST API key of a tenant. Only its SHA-256 is kept: keys are long random tokens, so a
/// fast hash suffices and a request costs no slow password hash (docs/rest-api.md).
struct api_key {
  std::string name;        ///< A label for logs and rotation, never secret.
  std::string sha256_hex;  ///< Lower-case hex of SHA-256 of the key.
};

/// `[tenants.NAME]`: a shop, publisher or app that sends through postern.
struct tenant_settings {
  std::string name;
  std::vector<smtp_user> smtp_users;
  std::vector<api_key> api_keys;
  std::string company_name;  ///< Template variable company_name, unless a request gives one.
  std::string company_url;   ///< Template variable company_url, likewise.
  double rate_limit = -1;  ///< Requests per second over HTTP; -1: [http] rate_limit.
  std::vector<std::string> sending_domains;
  std::string notify_address;
};

/// The whole configuration, validated. Plugin sections are kept as TOML for the plugins.
struct settings {
  std::filesystem::path file;                ///< The file it came from.
  server_settings server;
  submission_settings submission;
  spool_settings spool;
  delivery_settings delivery;
  smtp_settings smtp;
  tls_settings tls;
  http_settings http;
  std::vector<tenant_settings> tenants;
  bool demo = false;                          ///< [server] demo: warn loudly at start-up.
  toml::table transports;                    ///< [transports.NAME] sections.
  toml::table policies;                      ///< [policies.NAME] sections.
  std::vector<std::string> policy_order;     ///< [policies] order = [...]

  std::filesystem::path maildrop_dir() const { return server.data_dir / "maildrop"; }
};

/// Result of loading: settings, or every problem found (not just the first).
struct load_result {
  std::optional<settings> value;
  std::vector<config_error> errors;
};

/// Reads and validates a configuration file. Relative paths in it are taken from the
/// directory the file is in (data_dir) or from data_dir (everything else).
load_result load(const std::filesystem::path& file);

/// Same, for text already in memory; `file` names it in errors and anchors relative paths.
load_result parse(std::string_view text, const std::filesystem::path& file);

/// The configuration file to use when none is given: $POSTERN_CONFIG, else the built-in path.
std::filesystem::path default_path();

/// `given` if not empty (a -c or -C option), else default_path().
std::filesystem::path given_or_default(const std::string& given);

}  // namespace postern::config
