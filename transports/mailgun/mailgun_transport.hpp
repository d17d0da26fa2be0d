#pragma once

#include "http_client.hpp"

#include <postern/host.hpp>
#include <postern/duration.hpp>
#include <postern/transport.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace postern::transports {

/// The settings of `[transports.mailgun]`, read and checked.
struct mailgun_settings {
  std::string domain;      ///< The sending domain; empty when not set (probe says so).
  std::string base_url;    ///< "https://api.mailgun.net", without a trailing "/".
  std::string api_key;     ///< Empty when none was found. Never logged, never in a reply or probe text.
  std::string key_source;  ///< Where the key comes from, for messages: "api_key" or "$MAILGUN_API_KEY".
  bool testmode = false;   ///< Sends o:testmode=yes: Mailgun accepts the message but does not deliver it.
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  std::size_t max_in_flight = 8;
  bool probe_request = false;  ///< probe() asks Mailgun whether the key and domain work.

  /// Reads the section. The key is taken from `api_key`, else from the environment variable
  /// named by `api_key_env` (default MAILGUN_API_KEY). Throws std::invalid_argument naming
  /// `config.origin()` for a value that can never work (a bad region, URL, duration, type).
  static mailgun_settings read(const postern::config_section& config);
};

/// What one Mailgun answer means for each recipient of the attempt.
struct mailgun_outcome {
  postern::smtp_reply reply;
  std::string remote_id;                ///< The "id" of a 200 answer.
  std::chrono::seconds retry_after{0};  ///< From Retry-After, for a 4xx.
};

/// Maps an answer from POST /v3/{domain}/messages.mime to a reply, as Mailgun documents its
/// codes: 2xx delivered; 429, 5xx, a timeout or a connection failure 4xx; 400, 401, 403, 404
/// and 413 5xx. Anything else is 4xx: a wrong 4xx costs a retry, a wrong 5xx loses mail.
/// The text names the HTTP status and Mailgun's "message". `now` dates a Retry-After given as
/// an HTTP date. `secret` is removed from every text, should a peer ever echo it.
mailgun_outcome map_mailgun_response(const http_response& response, std::chrono::system_clock::time_point now,
                                     std::string_view secret = {});

/// Parses a Retry-After value: delay-seconds, or an HTTP date (IMF-fixdate, RFC 850 or asctime
/// form) taken relative to `now`. A date in the past gives 0 s. Nothing for a malformed value.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

/// Duration settings read as the gateway reads its own (postern/duration.hpp).
using postern::parse_duration;

/// Sends mail through Mailgun's HTTP API: one POST of the raw message per delivery attempt to
/// /v3/{domain}/messages.mime, with a `to` field per recipient of the attempt.
///
/// `deliver` queues the request with an http_client and returns at once; the client's thread
/// runs the transfers (at most `max_in_flight` at once, connections kept open) and calls
/// `done` when Mailgun answers, the timeout passes or the transport stops.
class mailgun_transport final : public postern::transport {
 public:
  /// Reads the settings (see mailgun_settings::read; throws on a bad value) and starts the
  /// client's thread.
  explicit mailgun_transport(postern::host& host);
  ~mailgun_transport() override;

  /// Available when a domain and an API key are set; with `probe_request = true`, also when
  /// Mailgun accepts the key for the domain (a GET of /v3/domains/{domain}).
  postern::probe_result probe() override;
  void deliver(postern::delivery_request request, postern::delivery_callback done) override;
  /// Answers every attempt in flight with 451 4.3.2; later ones get the same at once.
  void stop() override;

  const mailgun_settings& settings() const noexcept { return settings_; }

 private:
  /// Why the transport cannot send, or "" when it can.
  std::string missing() const;
  /// The key removed from a text (a probe's or a reply's).
  std::string redact(std::string text) const;

  postern::host& host_;
  mailgun_settings settings_;
  http_client client_;
};

}  // namespace postern::transports
