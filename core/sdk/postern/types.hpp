#pragma once
/// @file types.hpp
/// Value types that plugins see. Plain data: no behaviour beyond small helpers, safe to copy,
/// owned by whoever holds them. All addresses are stored without angle brackets.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace postern {

/// Which kind of mail a message is. Transports and policies may treat the two differently
/// (for example, the activity window applies to marketing mail only).
enum class mail_stream { transactional, marketing };

/// Text name of a stream, as used in config and APIs ("transactional", "marketing").
inline const char* to_string(mail_stream s) noexcept {
  return s == mail_stream::marketing ? "marketing" : "transactional";
}

/// RFC 3461 NOTIFY flags, a bit set. Zero means the client did not ask (default rules apply).
enum notify_flags : unsigned {
  notify_default = 0,
  notify_never = 1u << 0,
  notify_success = 1u << 1,
  notify_failure = 1u << 2,
  notify_delay = 1u << 3,
};

/// RFC 3461 RET: how much of the original message a failure report carries.
enum class dsn_ret { unspecified, headers, full };

/// One recipient of a message, as the envelope names it.
struct recipient {
  std::uint32_t index = 0;  ///< Position in the envelope; stable for the message's life.
  std::string address;      ///< The RCPT TO address, e.g. "alice@example.com".
  std::string orcpt;        ///< RFC 3461 ORCPT as given ("rfc822;alice@example.com"), or empty.
  unsigned notify = notify_default;  ///< RFC 3461 NOTIFY bit set.
};

/// The SMTP envelope of a message.
struct envelope {
  std::string mail_from;  ///< Envelope sender; empty is the null sender "<>" (bounces).
  std::vector<recipient> recipients;
  std::string envid;      ///< RFC 3461 ENVID, or empty.
  dsn_ret ret = dsn_ret::unspecified;
};

/// A message as the spool holds it. Immutable once spooled; shared between the delivery
/// engine and a transport for as long as a delivery attempt runs.
struct message {
  std::string queue_id;     ///< The spool's id for this message; appears in every log line.
  std::string tenant;       ///< The sending tenant (shop, publisher, app).
  mail_stream stream = mail_stream::transactional;
  std::vector<std::string> tags;
  std::string campaign_id;  ///< Empty unless the message belongs to a campaign.
  envelope env;
  std::string raw;          ///< The RFC 5322 message, CRLF line endings, trace headers included.
  std::chrono::system_clock::time_point arrival;  ///< When the spool acknowledged it.
};

/// An SMTP-style reply. Transports answer one per recipient; policies answer one per verdict.
/// The first digit decides what happens: 2 delivered, 4 try again later, 5 permanent failure.
struct smtp_reply {
  int code = 0;           ///< Three-digit basic status, e.g. 250, 451, 550.
  std::string enhanced;   ///< RFC 3463 enhanced status, e.g. "4.4.1"; may be empty.
  std::string text;       ///< Human-readable text; keep it one line.

  bool success() const noexcept { return code >= 200 && code < 300; }
  bool transient() const noexcept { return code >= 400 && code < 500; }
  bool permanent() const noexcept { return code >= 500 && code < 600; }
};

/// A transport's answer for one recipient of a delivery attempt.
struct recipient_result {
  std::uint32_t recipient_index = 0;  ///< Matches recipient::index.
  smtp_reply reply;
  std::string remote_id;  ///< The peer's id for the message (queue id, Mailgun id), if any.
  /// For a 4xx: the peer asked not to be tried again before this long (HTTP Retry-After, a
  /// rate limit). The engine waits at least this long, and at least its own backoff. 0: no wish.
  std::chrono::seconds retry_after{0};
};

/// A header field to add to a message, name without the colon, value unfolded.
struct header_field {
  std::string name;
  std::string value;
};

}  // namespace postern
