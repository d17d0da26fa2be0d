#pragma once
// Delivery status notifications (RFC 3464 multipart/report, RFC 3461 semantics).

#include <postern/types.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace postern::delivery {

/// One recipient's line in a report.
struct dsn_recipient {
  postern::recipient rcpt;
  std::string action;          ///< "failed", "delayed", "delivered" (RFC 3464 §2.3.3).
  postern::smtp_reply reply;   ///< The last reply; its enhanced code is the Status field.
  std::string remote_mta;      ///< Transport or peer that answered, if any.
};

/// Builds the complete RFC 5322 text of a DSN about `original` for the given recipients:
/// a human-readable part, a message/delivery-status part, and the original's header
/// (text/rfc822-headers) or, with RET=FULL, the whole original (message/rfc822).
/// Written directly rather than with a MIME library: the structure is fixed and every
/// part is generated here, so there is nothing to parse or encode beyond what is below.
std::string build_dsn(const postern::message& original, const std::vector<dsn_recipient>& recipients,
                      const std::string& reporting_host, std::chrono::system_clock::time_point now,
                      const std::string& queue_id);

/// True if the recipient asked for a report with this action (RFC 3461 §4.1: without NOTIFY,
/// failures are reported and successes are not).
bool wants_report(const postern::recipient& rcpt, const std::string& action);

}  // namespace postern::delivery
