#pragma once
/// @file policy.hpp
/// The policy interface: rules every submission passes before it is spooled.

#include <postern/types.hpp>

#include <string>
#include <vector>

namespace postern {

/// The point of a submission at which a policy is consulted.
enum class policy_stage {
  mail_from,  ///< Sender known (SMTP MAIL); recipients and content not yet.
  recipient,  ///< One more recipient known (SMTP RCPT); `submission_view::recipients` ends with it.
  content,    ///< Whole message known (end of DATA, a REST message, a campaign recipient).
};

/// What a policy sees of a submission. References are valid for the duration of the call only.
struct submission_view {
  const std::string& tenant;
  mail_stream stream;
  const std::vector<std::string>& tags;
  const std::string& campaign_id;
  const std::string& mail_from;
  const std::vector<recipient>& recipients;
  const std::string& raw;   ///< Empty before the content stage.
  bool dry_run;             ///< True when a campaign report runs the chain without sending.
};

/// A recipient a policy removes from a submission, with the reason (recorded as `suppressed`).
struct dropped_recipient {
  std::uint32_t recipient_index = 0;
  std::string reason;
};

/// A policy's decision.
struct verdict {
  enum class action {
    accept,  ///< Go on to the next policy.
    reject,  ///< Refuse the submission with `reply` (5xx), passed to the client as given.
    defer,   ///< Refuse it for now with `reply` (4xx); the client may try again.
  };
  action decision = action::accept;
  smtp_reply reply;                          ///< Used for reject and defer.
  std::vector<dropped_recipient> drops;      ///< Recipients to suppress (accept only).
  std::vector<header_field> add_headers;     ///< Headers to prepend (content stage only).
  std::string route;                         ///< A transport name to prefer, or empty.

  static verdict accept() { return {}; }
  static verdict reject(int code, std::string enhanced, std::string text) {
    verdict v;
    v.decision = action::reject;
    v.reply = {code, std::move(enhanced), std::move(text)};
    return v;
  }
  static verdict defer(int code, std::string enhanced, std::string text) {
    verdict v;
    v.decision = action::defer;
    v.reply = {code, std::move(enhanced), std::move(text)};
    return v;
  }
};

/// What happened to one recipient of a spooled message.
struct outcome_event {
  enum class kind { delivered, deferred, failed, bounced };
  kind what = kind::delivered;
  std::string queue_id;
  std::string tenant;
  std::string campaign_id;
  std::string recipient;
  std::string transport;
  smtp_reply reply;
};

/// A policy plugin. Policies run in the configured order; the first reject or defer ends the
/// chain.
///
/// Threading: `check` may be called from several threads at once and must not block for long
/// (it runs while an SMTP client waits). `on_outcome` is called on a delivery thread.
/// Exceptions: none may escape; the host treats one that does as a 451 defer.
class policy {
 public:
  virtual ~policy() = default;
  /// Decides on a submission at one stage.
  virtual verdict check(const submission_view& submission, policy_stage stage) = 0;
  /// Learns the outcome of a delivery. Default: ignore.
  virtual void on_outcome(const outcome_event&) {}
};

}  // namespace postern
