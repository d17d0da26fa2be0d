#pragma once

#include "spool/spool.hpp"
#include "store/state_store.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace postern::webhooks {

/// What a POST to a webhook URL gave: the HTTP status (0 when no answer) and a short text.
struct post_result {
  long status = 0;
  std::string text;
  bool success() const noexcept { return status >= 200 && status < 300; }
};

/// Sends one webhook request; replaceable in tests. The default uses libcurl.
using poster = std::function<post_result(const std::string& url, const std::string& body)>;
/// POSTs with libcurl. Unless `private_networks`, connections to loopback, private (RFC 1918,
/// RFC 4193), link-local and unspecified addresses are refused at connect time (after DNS, so
/// a name that resolves to one is refused too): a tenant's URL must not reach our own network.
post_result curl_post(const std::string& url, const std::string& body, bool private_networks = false);
/// curl_post, refusing private addresses: the default poster.
inline poster public_poster() {
  return [](const std::string& url, const std::string& body) { return curl_post(url, body, false); };
}

struct dispatcher_options {
  std::chrono::milliseconds poll_interval = std::chrono::seconds(1);
  std::vector<std::chrono::seconds> retry_schedule{std::chrono::seconds(30), std::chrono::minutes(1),
                                                   std::chrono::minutes(5),  std::chrono::minutes(15),
                                                   std::chrono::hours(1),    std::chrono::hours(2),
                                                   std::chrono::hours(4),    std::chrono::hours(8)};
};

/// Tells tenants' webhook URLs about delivery events, durably.
///
/// The spool's event log is the source: the dispatcher turns events past its cursor into
/// webhook deliveries and moves the cursor in the same state-store transaction, so an event is
/// neither lost nor queued twice across a crash. Deliveries are POSTed with a Mailgun-style
/// signature (HMAC-SHA256 of timestamp and token under the tenant's signing key), retried on
/// the schedule until a 2xx, and each attempt is written to the spool's event log ("webhook").
/// A round posts in a few lanes at once, each tenant in one lane and only a few of a tenant's
/// deliveries per round, so that one tenant's slow URL does not hold up everyone.
///
/// Runs on its own thread (and, for a round, its lanes); start() once, stop() before the
/// spool and store go away. The poster must be thread-safe.
class dispatcher {
 public:
  dispatcher(spool::spool& spool, store::state_store& state, dispatcher_options options, poster post = public_poster());
  ~dispatcher();

  void start();
  void stop();
  /// One round (generate, then send what is due); for tests, which call it without start().
  void run_once(std::chrono::system_clock::time_point now);

 private:
  void loop();
  void generate(std::chrono::system_clock::time_point now);
  void send_due(std::chrono::system_clock::time_point now);
  void send_one(const store::webhook_delivery& d, std::chrono::system_clock::time_point now);
  bool stopping();
  std::string signed_body(const store::webhook_delivery& d) ;

  spool::spool& spool_;
  store::state_store& state_;
  dispatcher_options options_;
  poster post_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

/// Hex HMAC-SHA256 of timestamp followed by token, under `key` (Mailgun's webhook signature).
std::string signature(std::string_view key, std::string_view timestamp, std::string_view token);

}  // namespace postern::webhooks
