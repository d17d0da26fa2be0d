#pragma once

#include "spool/spool.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace postern::spool {
class database;
class statement;
}

namespace postern::campaign {

using time_point = std::chrono::system_clock::time_point;

/// Where a campaign stands. (draft →) starting → sending → (paused ↔ sending) → finished, or
/// → cancelled. `starting` lasts while its recipients are being recorded; a campaign found
/// starting after a crash never started and is removed.
enum class campaign_state { draft, starting, sending, paused, finished, cancelled };
const char* to_string(campaign_state state);
std::optional<campaign_state> campaign_state_from(std::string_view name);

/// Where one recipient of a campaign stands in the campaign's own queue. `queued` means
/// handed to the spool (whose recipient states say the rest).
enum class recipient_state { pending = 0, queued = 1, dropped = 2, cancelled = 3 };
const char* to_string(recipient_state state);

/// A campaign as recorded when it starts.
struct campaign_record {
  std::string id;
  std::string tenant;
  std::string name;
  campaign_state state = campaign_state::sending;
  std::string definition;   ///< The request as the tenant gave it (JSON).
  std::string audience;     ///< The audience rule, canonical JSON.
  std::string mail_from;
  std::string raw;          ///< The message without a To field.
  std::vector<std::string> tags;
  std::string fingerprint;
  bool resend = false;
  std::string list;
  std::uint64_t selected = 0;
  std::int64_t cost = 0;
  time_point created{};
  time_point started{};       ///< When it started sending (a draft: not yet).
  time_point finished{};
  bool end_reported = false;  ///< on_campaign_end has run for it.
  /// Its messages' states in the spool when its end was reported: final, and kept here since
  /// the spool deletes old messages (spool.keep_history).
  std::optional<spool::spool_stats> final_spool;
};

/// One selected contact: where it stands, and why when dropped.
struct recipient_row {
  std::int64_t seq = 0;
  std::string email;
  recipient_state state = recipient_state::pending;
  std::string policy;   ///< For dropped: which policy.
  std::string reason;   ///< For dropped: why.
  std::string queue_id; ///< For queued.
  std::int64_t cost = 0;  ///< What the campaign's start charged for this recipient.
};

/// How many of a campaign's recipients are in each of its own states.
struct recipient_counts {
  std::uint64_t pending = 0, queued = 0, dropped = 0, cancelled = 0;
};

/// A policy's drops, counted by reason.
struct drop_count {
  std::string policy;
  std::string reason;
  std::uint64_t count = 0;
};

/// A saved audience: a name for a rule (kept as the JSON the tenant gave).
struct saved_audience {
  std::string name;
  std::string rule;
  time_point created{};
};

/// Campaigns, their recipients, saved audiences, and the data policy plugins keep
/// (`host::store()`), in one SQLite database (WAL, synchronous=FULL): a campaign's start, its
/// recipient list and what the policies record for it commit in one transaction.
///
/// Thread-safe: one connection behind a recursive mutex, so that plugin store calls made
/// inside `start` (on the same thread) join its transaction.
class campaign_store {
 public:
  explicit campaign_store(const std::filesystem::path& file);
  ~campaign_store();

  /// Runs `body` in one write transaction; store calls from the same thread inside it join
  /// it. Rolls back and rethrows if `body` throws. Nested calls join the outer transaction.
  void transaction(const std::function<void()>& body);
  /// Inside a transaction: runs `body` under a savepoint and undoes what the store was told
  /// meanwhile unless `body` answers true (undone too when it throws). The campaign feeder
  /// keeps what the policies record for a recipient only when that recipient is sent.
  void keep_if(const std::function<bool()>& body);

  /// Inside a transaction: records the campaign.
  void insert(const campaign_record& record);
  /// Inside a transaction: appends recipients, numbered from the campaign's next seq.
  void add_recipients(std::string_view campaign, const std::vector<recipient_row>& rows);

  std::optional<campaign_record> find(std::string_view tenant, std::string_view id);
  /// Just the state (without reading the message): what the feeder checks every round.
  std::optional<campaign_state> state_of(std::string_view id);
  /// Newest first, at most `limit`, created before `before` (epoch: no bound).
  std::vector<campaign_record> list(std::string_view tenant, std::size_t limit, time_point before);
  /// Campaigns sending or paused, or finished/cancelled without their end reported (no drafts).
  std::vector<campaign_record> unfinished();
  /// The newest campaign of the tenant with this fingerprint, if any.
  std::optional<campaign_record> find_by_fingerprint(std::string_view tenant, std::string_view fingerprint);

  /// Sets how many contacts the selection found, what it costs, and when it started.
  void set_totals(std::string_view id, std::uint64_t selected, std::int64_t cost, time_point started);
  /// Forgets a campaign that did not start, with its recipients (its row too unless `keep_draft`,
  /// which puts it back to draft).
  void abandon(std::string_view id, bool keep_draft);
  /// Campaigns left `starting` by a crash.
  std::vector<campaign_record> starting();
  /// Ids of campaigns whose end was reported before final_spool existed.
  std::vector<std::string> ended_without_final_spool();
  /// Records the final states of an ended campaign's messages (see mark_end_reported).
  void set_final_spool(std::string_view id, const spool::spool_stats& final_spool);
  /// What the start charged for recipients that were then never sent (dropped when fed, or
  /// cancelled).
  std::int64_t unsent_cost(std::string_view campaign);
  /// Changes the state if it is one of `from`; true if it changed.
  bool set_state(std::string_view id, campaign_state to, std::initializer_list<campaign_state> from,
                 time_point now);
  /// Marks that the policies heard of the campaign's end, and keeps its messages' final states.
  void mark_end_reported(std::string_view id, const spool::spool_stats& final_spool);

  /// Up to `limit` pending recipients after `after_seq`, in order.
  std::vector<recipient_row> pending(std::string_view campaign, std::size_t limit, std::int64_t after_seq = 0);
  /// Records what became of recipients fed to the spool (state, policy, reason, queue id);
  /// only rows still pending change (a cancelled one stays cancelled). Not synced on its own
  /// (a crash may lose it; the feeder finds queued recipients again by their origin keys).
  void update(std::string_view campaign, const std::vector<recipient_row>& rows);
  /// Marks every pending recipient cancelled; returns how many.
  std::uint64_t cancel_pending(std::string_view campaign);
  /// Marks the queued recipients whose messages a cancel ended in the spool as cancelled.
  void mark_cancelled(std::string_view campaign, const std::vector<std::string>& queue_ids);
  recipient_counts counts(std::string_view campaign);
  std::vector<drop_count> drops(std::string_view campaign);
  /// Recipients in order, after `after_seq`, optionally of one state.
  std::vector<recipient_row> recipients(std::string_view campaign, std::optional<recipient_state> state,
                                        std::int64_t after_seq, std::size_t limit);

  void save_audience(std::string_view tenant, const saved_audience& audience);
  std::optional<saved_audience> find_audience(std::string_view tenant, std::string_view name);
  std::vector<saved_audience> audiences(std::string_view tenant);
  bool delete_audience(std::string_view tenant, std::string_view name);

  // The plugins' key-value data (see postern::plugin_store).
  std::optional<std::string> data_get(std::string_view plugin, std::string_view key);
  void data_put(std::string_view plugin, std::string_view key, std::string_view value);
  bool data_put_new(std::string_view plugin, std::string_view key, std::string_view value);
  std::optional<std::int64_t> data_add(std::string_view plugin, std::string_view key, std::int64_t delta,
                                       std::int64_t ceiling);
  void data_erase(std::string_view plugin, std::string_view key);

 private:
  template <class Body>
  auto locked_write(Body body);
  /// Runs `use` on a statement prepared once for this connection (the plugins' data is read
  /// and written once per campaign recipient), reset when `use` returns. Under mutex_.
  template <class Use>
  auto with_statement(const char* sql, Use use);

  std::recursive_mutex mutex_;
  std::unique_ptr<spool::database> db_;
  std::unordered_map<const char*, std::unique_ptr<spool::statement>> statements_;  // by SQL text's address
  int depth_ = 0;  // transaction nesting, under mutex_
};

}  // namespace postern::campaign
