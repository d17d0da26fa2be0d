#pragma once
/// @file host.hpp
/// Services the gateway lends to each plugin. A plugin receives a `host&` at creation; the
/// host outlives every object the plugin creates, so the reference stays valid until the
/// plugin object is destroyed. Every member is safe to call from any thread.

#include <postern/types.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace postern {

/// Severity of a log line, from most to least verbose.
enum class log_level { trace, debug, info, warn, error };

/// The plugin's own configuration section: `[transports.NAME]` for a transport,
/// `[policies.NAME]` for a policy. Read-only; lookups of missing keys return empty values.
/// Keys may be dotted ("tls.verify") to reach nested tables.
class config_section {
 public:
  virtual ~config_section() = default;
  /// A string value, or nothing if the key is missing or not a string.
  virtual std::optional<std::string> get_string(std::string_view key) const = 0;
  /// An integer value, or nothing if the key is missing or not an integer.
  virtual std::optional<std::int64_t> get_int(std::string_view key) const = 0;
  /// A boolean value, or nothing if the key is missing or not a boolean.
  virtual std::optional<bool> get_bool(std::string_view key) const = 0;
  /// A list of strings; empty if the key is missing. Non-string elements are skipped.
  virtual std::vector<std::string> get_strings(std::string_view key) const = 0;
  /// True if the key exists, whatever its type.
  virtual bool has(std::string_view key) const = 0;
  /// Where the section lives, for error messages: "postern.toml [transports.file]".
  virtual std::string origin() const = 0;
};

/// Label pairs attached to a metric sample, e.g. {{"transport", "file"}}.
using metric_labels = std::vector<std::pair<std::string, std::string>>;

/// Counters and histograms exported by the gateway. Names are Prometheus-style
/// (`postern_<plugin>_<what>_total`); the host prefixes nothing.
class metrics {
 public:
  virtual ~metrics() = default;
  /// Adds `value` (>= 0) to a counter.
  virtual void add(std::string_view name, double value, const metric_labels& labels = {}) = 0;
  /// Records one observation in a histogram (seconds for durations).
  virtual void observe(std::string_view name, double value, const metric_labels& labels = {}) = 0;
};

/// A new message a plugin hands to the gateway (a completion notice, a report). It takes the
/// same path as any other mail: submission, policies, spool, delivery.
struct new_message {
  std::string tenant;
  mail_stream stream = mail_stream::transactional;
  std::vector<std::string> tags;
  std::string campaign_id;
  envelope env;     ///< recipients' `index` fields are assigned by the gateway.
  std::string raw;  ///< RFC 5322 text; LF or CRLF line endings. Message-ID/Date added if missing.
  /// Optional. A second message with the same key is not stored again: the first one's queue
  /// id is answered. Makes a notice sent again after a crash arrive once.
  std::string origin_key;
};

/// Outcome of a submission: the queue id on success, or the reply that refused it.
struct submit_result {
  bool accepted = false;
  std::string queue_id;  ///< Set when accepted.
  smtp_reply reply;      ///< 250 when accepted; the refusal otherwise.
};

/// Called once when a submission is durable in the spool or has been refused.
/// Runs on a gateway thread: keep it short and do not block.
using submit_callback = std::function<void(submit_result)>;

/// A small durable key-value store of the plugin's own: keys of one plugin never meet another's.
/// Every call commits before it returns (synchronous, fsync'd), except inside
/// policy::on_campaign_start, where the calls join the campaign's transaction.
/// Thread-safe. Throws std::runtime_error when the database fails (the policy chain turns an
/// escaped exception into a 451 defer).
class plugin_store {
 public:
  virtual ~plugin_store() = default;
  virtual std::optional<std::string> get(std::string_view key) = 0;
  virtual void put(std::string_view key, std::string_view value) = 0;
  /// Stores the value only if the key is absent; true if it stored it.
  virtual bool put_new(std::string_view key, std::string_view value) = 0;
  /// Adds `delta` to the integer at `key` (0 when absent) unless the sum would exceed
  /// `ceiling`; answers the new value, or nothing (and changes nothing) when it would.
  virtual std::optional<std::int64_t> add(std::string_view key, std::int64_t delta, std::int64_t ceiling) = 0;
  virtual void erase(std::string_view key) = 0;
};

/// The gateway as a plugin sees it.
class host {
 public:
  virtual ~host() = default;
  /// Writes one log line attributed to the plugin.
  virtual void log(log_level level, std::string_view text) = 0;
  /// The plugin's own configuration section.
  virtual const config_section& config() const = 0;
  /// Current wall-clock time. Use this rather than the system clock so tests can control it.
  virtual std::chrono::system_clock::time_point now() const = 0;
  /// This gateway's host name, as it names itself in Received headers and EHLO.
  virtual std::string hostname() const = 0;
  /// Resolves a path from the plugin's settings: absolute paths are returned as they are,
  /// relative ones are taken from the gateway's data directory (`server.data_dir`).
  virtual std::string resolve_path(std::string_view path) const = 0;
  /// Submits a new message. `done` is called exactly once, possibly before submit returns.
  virtual void submit(new_message msg, submit_callback done) = 0;
  /// Metrics registry shared by the whole gateway.
  virtual postern::metrics& metrics() = 0;
  /// The plugin's own durable store.
  virtual plugin_store& store() = 0;
  /// The name of the delivery route (`[[delivery.routes]]` name, or "default") that `msg`
  /// would take to `recipient`; only the tenant, stream, tags and sender of `msg` are read.
  /// Empty where the gateway does not deliver (one-shot commands).
  virtual std::string route_of(const message& msg, std::string_view recipient) = 0;
  /// A one-click unsubscribe link (RFC 8058) for one recipient, signed by the gateway and
  /// served by its HTTP server: a POST to it unsubscribes the address from `list` (from
  /// everything when `list` is empty). Empty when the gateway has neither `[http] public_url`
  /// nor an HTTP listener to name in it.
  virtual std::string unsubscribe_url(std::string_view tenant, std::string_view email, std::string_view list,
                                      std::string_view campaign_id) = 0;
};

}  // namespace postern
