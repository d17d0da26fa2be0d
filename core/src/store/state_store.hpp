#pragma once

#include "templates/library.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace postern::spool {
class database;
}

namespace postern::store {

/// One webhook delivery: an event to POST to a tenant's URL, retried until it succeeds.
struct webhook_delivery {
  std::int64_t id = 0;
  std::string tenant;
  std::string event_type;
  std::string url;
  std::string payload;  ///< The JSON body, signed at send time.
  std::uint32_t attempts = 0;
};

/// The gateway's own state that is not mail: tenants' templates and webhooks, and the webhook
/// deliveries in flight. One SQLite database (WAL, synchronous=FULL) beside the spool, so that
/// the spool's hot path shares nothing with it.
///
/// Thread-safe: one connection behind a mutex (these are small, infrequent operations).
class state_store {
 public:
  explicit state_store(const std::filesystem::path& file);
  ~state_store();

  // Templates a tenant stored (the built-in ones are not stored; see templates::library).
  std::optional<templates::message_template> get_template(std::string_view tenant, std::string_view name);
  std::vector<templates::message_template> list_templates(std::string_view tenant);
  void put_template(std::string_view tenant, const templates::message_template& t);
  bool delete_template(std::string_view tenant, std::string_view name);

  /// Event type -> URL for a tenant.
  std::map<std::string, std::string> webhooks(std::string_view tenant);
  /// Replaces a tenant's webhooks; returns its signing key (made on first use).
  std::string set_webhooks(std::string_view tenant, const std::map<std::string, std::string>& urls);
  /// The key webhook payloads of this tenant are signed with (made on first use).
  std::string signing_key(std::string_view tenant);

  /// The spool event sequence number up to which webhooks were generated.
  std::int64_t webhook_cursor();
  /// Records deliveries for new events, due at `first_attempt`, and moves the cursor, in one
  /// transaction. The caller's clock, not the store's: deliveries made in a round are due in it.
  void add_webhook_deliveries(const std::vector<webhook_delivery>& deliveries, std::int64_t cursor,
                              std::chrono::system_clock::time_point first_attempt);
  /// Queues one delivery that no spool event made (a campaign's end), leaving the cursor,
  /// unless a delivery was queued under `once_key` before (kept after the delivery is done):
  /// a caller that asks again after a crash queues nothing twice. True when it was queued.
  bool add_webhook_delivery(const webhook_delivery& delivery, std::string_view once_key,
                            std::chrono::system_clock::time_point first_attempt);
  /// Deliveries due now, oldest first.
  std::vector<webhook_delivery> due_webhooks(std::chrono::system_clock::time_point now, std::size_t limit);
  /// A delivery succeeded: it is removed (its outcome is in the spool's event log).
  void webhook_done(std::int64_t id);
  /// Another failed attempt: try again at `next`, or give up (and remove it) when `next` is empty.
  void webhook_failed(std::int64_t id, std::optional<std::chrono::system_clock::time_point> next);

 private:
  std::mutex mutex_;
  std::unique_ptr<spool::database> db_;
};

}  // namespace postern::store
