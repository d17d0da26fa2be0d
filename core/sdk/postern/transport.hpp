#pragma once
/// @file transport.hpp
/// The transport interface: how a message leaves the gateway.

#include <postern/types.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace postern {

/// Whether a transport can be used on this machine with its settings, and why not.
struct probe_result {
  bool available = false;
  std::string reason;  ///< One line a person can act on: "no API key", "/srv/out not writable".
};

/// One delivery attempt: a spooled message and those of its recipients now due.
struct delivery_request {
  std::shared_ptr<const message> msg;   ///< Shared; keep it as long as the attempt needs it.
  std::vector<recipient> recipients;    ///< A non-empty subset of msg->env.recipients.
};

/// Receives the outcome of a delivery attempt: one result per requested recipient.
/// A recipient missing from the vector is treated as a temporary failure (451 4.3.0).
/// May be called from any thread, exactly once, possibly before `deliver` returns.
using delivery_callback = std::function<void(std::vector<recipient_result>)>;

/// A transport plugin delivers messages somewhere: a relay, an HTTP API, a program, a disk.
///
/// The delivery engine alone decides retries, backoff and expiry from the replies, so a
/// transport reports faithfully and never retries on its own beyond one attempt's fail-over.
/// Replies: 2xx delivered, 4xx try again later (peer down, disk full, rate limited),
/// 5xx permanent (unknown user, rejected content, bad credentials).
///
/// Threading: `deliver` is called on one of the engine's worker threads and may block for the
/// length of one attempt (sendmail) or start asynchronous work and return at once (smtp,
/// mailgun; file, which syncs on a thread of its own). Several calls may run at the same
/// time, so `deliver` must be thread-safe.
/// `probe` may be called at any time from any thread.
/// Exceptions: none may escape; the host treats one that does as 451 for every recipient.
class transport {
 public:
  virtual ~transport() = default;
  /// Checks that the transport can work here with its settings. Quick: a few seconds at most.
  virtual probe_result probe() = 0;
  /// Starts one delivery attempt; `done` receives the per-recipient results.
  virtual void deliver(delivery_request request, delivery_callback done) = 0;
  /// Called once before destruction when the gateway stops: finish or abandon attempts in
  /// flight and call their callbacks (a 4xx is fine: the message stays in the spool).
  virtual void stop() {}
};

}  // namespace postern
