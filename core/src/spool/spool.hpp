#pragma once

#include <postern/host.hpp>
#include <postern/types.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace postern::spool {

class body_store;
class database;
struct writer_statements;
struct reader_statements;

using time_point = std::chrono::system_clock::time_point;

/// Where a recipient stands. The first two are pending, the last two final.
enum class recipient_state { queued = 0, deferred = 1, delivered = 2, failed = 3 };
const char* to_string(recipient_state state);

/// A message to make durable. `msg.queue_id` and `msg.arrival` are set by the caller (the
/// submission service puts the id in the Received header before spooling).
struct new_entry {
  postern::message msg;
  std::string source;      ///< "local", "smtp", "http", "dsn", "plugin:NAME".
  std::string origin_key;  ///< Optional. A second entry with the same key is not stored again:
                           ///< the first one's id is answered (idempotent hand-over).
  time_point not_before{}; ///< Scheduled delivery: no attempt before then (default: at once).
};

struct enqueue_result {
  bool ok = false;
  bool duplicate = false;  ///< True when `origin_key` matched an earlier message.
  std::string queue_id;
  std::string error;       ///< Why it was not stored (disk full, I/O error), when !ok.
};
using enqueue_callback = std::function<void(enqueue_result)>;

/// A state change, as kept in the event log.
struct event_record {
  time_point time;
  std::string queue_id;
  std::string recipient;   ///< Empty for message-level events.
  std::string type;        ///< accepted, deferred, delivered, failed, dsn, held, released, deleted.
  std::string transport;
  postern::smtp_reply reply;
};

/// An event of the log with its place in it, for feeds (the REST events API, webhooks).
struct feed_event {
  std::int64_t seq = 0;  ///< Orders events of the same millisecond; "accepted" events are negative.
  std::string tenant;
  event_record event;
};

/// Where a feed continues: after this (time, seq).
struct feed_cursor {
  time_point time{};
  std::int64_t seq = 0;
};

/// New state of one recipient after a delivery attempt.
struct recipient_update {
  std::string queue_id;
  std::uint32_t index = 0;
  recipient_state state = recipient_state::queued;
  std::uint32_t attempts = 0;
  time_point next_attempt;
  postern::smtp_reply reply;
  std::string transport;
  std::string remote_id;
};

/// Everything one delivery attempt changes, committed atomically: recipient states, their
/// events, and the delivery status notifications the outcome produced.
struct attempt_record {
  std::vector<recipient_update> updates;
  std::vector<event_record> events;
  std::vector<new_entry> new_messages;
};

/// Called once the commit is durable (error empty) or has failed (error says why).
using commit_callback = std::function<void(std::string error)>;

struct recipient_status {
  postern::recipient rcpt;
  recipient_state state = recipient_state::queued;
  std::uint32_t attempts = 0;
  time_point next_attempt;
  postern::smtp_reply last_reply;
  std::string transport;
  std::string remote_id;
};

/// A spooled message with its recipients' states.
struct queued_message {
  std::shared_ptr<const postern::message> msg;  ///< `raw` is empty when not loaded or already dropped.
  std::string source;
  bool held = false;
  std::uint64_t size = 0;
  std::vector<recipient_status> recipients;
};

/// Counts of recipients per state, and messages with pending recipients.
struct spool_stats {
  std::uint64_t messages_pending = 0;
  std::uint64_t queued = 0, deferred = 0, delivered = 0, failed = 0;
  std::uint64_t cancelled = 0;  ///< campaign_stats only: of `failed`, those a campaign cancel ended.
};

struct spool_options {
  std::filesystem::path dir;
  std::size_t max_batch = 1024;        ///< Operations per group commit at most.
  postern::metrics* metrics = nullptr; ///< Receives commit latency and batch sizes, if set.
  /// How long a finished message's content is kept (for resends); 0: dropped when it finishes.
  std::chrono::milliseconds keep_content{0};
  /// Bodies larger than this go to segment files (bodies/), smaller ones into the database:
  /// a segment costs one more fdatasync per commit, which small messages do not repay.
  std::size_t inline_body_max = 16 * 1024;
  /// A segment file is closed and a new one started past this size.
  std::uint64_t segment_bytes = 64ull << 20;
};

/// The durable message store.
///
/// Messages, recipients and events live in one SQLite database in WAL mode with
/// synchronous=FULL: a commit returns only once the write-ahead log is fsync'd, and a crash at
/// any point leaves either the whole transaction or none of it. One writer thread takes every
/// pending write at once and commits them in one transaction (group commit), so N concurrent
/// submissions cost one fsync, not N. Reads use a separate connection and never wait for the
/// writer.
///
/// Thread-safety: every member may be called from any thread. Callbacks run on the writer
/// thread after the commit; they must be short and must not call the blocking *_wait members.
class spool {
 public:
  explicit spool(spool_options options);
  ~spool();
  spool(const spool&) = delete;
  spool& operator=(const spool&) = delete;

  /// Stores a message; `done` runs once it is durable or refused.
  void enqueue(new_entry entry, enqueue_callback done);
  /// Stores a message and waits for the commit.
  enqueue_result enqueue_wait(new_entry entry);

  /// Records a delivery attempt's outcome; `done` runs once it is durable.
  void record(attempt_record record, commit_callback done);
  /// Same, waiting. Returns the error, empty on success.
  std::string record_wait(attempt_record record);

  /// Messages a commit has just made durable, handed over so that delivery can start from
  /// memory instead of reading them back.
  using stored_messages = std::vector<std::shared_ptr<const postern::message>>;
  /// Sets a function called (on the writer thread) after a commit that stored new messages.
  /// Set it before concurrent use.
  void on_enqueued(std::function<void(stored_messages)> notify);

  /// Returns once every write submitted before the call is committed and its callback has run.
  void wait_idle();

  /// Ids of messages not held with a pending recipient due at `now`, most overdue first.
  std::vector<std::string> due(time_point now, std::size_t limit);
  /// A message with its recipients; nothing if unknown. With `with_body`, `msg->raw` is read.
  std::optional<queued_message> load(std::string_view queue_id, bool with_body = true);
  /// Messages with pending recipients, oldest first (the body is not read).
  std::vector<queued_message> pending();
  /// The event log of one message, oldest first.
  std::vector<event_record> events(std::string_view queue_id);
  /// A tenant's events after `after` and not after `until`, oldest first, at most `limit`; with "accepted" derived
  /// from arrivals. `type` empty: every type.
  std::vector<feed_event> tenant_events(std::string_view tenant, std::string_view type, feed_cursor after,
                                        time_point until, std::size_t limit);
  /// Stored events (no "accepted") with seq > `after_seq`, in order, at most `limit`.
  std::vector<feed_event> events_after(std::int64_t after_seq, std::size_t limit);
  /// What is still to deliver: messages_pending, queued and deferred (delivered and failed
  /// stay 0). Costs in proportion to the pending recipients, never to the spool's history,
  /// since /metrics reads it at every scrape.
  spool_stats stats();
  /// Recipient counts of one campaign's messages (messages_pending: those not finished).
  spool_stats campaign_stats(std::string_view campaign_id);
  /// True while a message of the campaign is not finished (one index probe, however large).
  bool campaign_open(std::string_view campaign_id);
  /// The ids of the messages stored under these origin keys: key → id, for the keys found.
  std::unordered_map<std::string, std::string> find_origins(const std::vector<std::string>& origin_keys);

  // Operator actions (`postern queue …`). Each commits before it returns and answers how many
  // messages (for flush: pending recipients) it changed. An empty id in flush means all.
  std::size_t hold(std::string_view queue_id);
  std::size_t release(std::string_view queue_id);
  std::size_t remove(std::string_view queue_id);
  std::size_t flush(std::string_view queue_id);
  /// Ends every unfinished message of a campaign as `remove` does, with the text "campaign
  /// cancelled"; returns their ids. A delivery already under way may still finish.
  std::vector<std::string> cancel_campaign(std::string_view campaign_id);
  /// Drops the content of messages finished longer than keep_content ago; returns how many.
  /// In rounds; stops between two when `stop` is set (shutdown).
  std::size_t purge_content(time_point now, const std::atomic<bool>* stop = nullptr);
  /// Deletes messages finished before `before`, with their recipients and events (and their
  /// bodies), except those of campaigns `keep_campaign` names; returns how many. In rounds, so
  /// that submissions never wait long behind it; stops between two when `stop` is set.
  std::size_t purge_history(time_point before, const std::function<bool(std::string_view)>& keep_campaign = {},
                            const std::atomic<bool>* stop = nullptr);

 private:
  struct operation {
    std::function<void(writer_statements&)> apply;  // runs inside the batch transaction
    std::function<void(const std::string&)> done;  // error empty on success
    // Entries this operation stores; after a successful commit, those not found to be
    // duplicates are handed to on_enqueued.
    std::vector<std::shared_ptr<new_entry>> entries;
    std::shared_ptr<std::vector<bool>> duplicate;
  };

  void submit(operation op);
  std::string submit_wait(std::function<void(writer_statements&)> apply);
  /// Runs `round` as one writer operation after another until it says there is no more (or
  /// `stop` is set); the total of what the rounds did.
  std::size_t in_rounds(const std::atomic<bool>* stop,
                        const std::function<std::pair<std::size_t, bool>(writer_statements&)>& round);
  void writer_loop();
  void commit_batch(std::vector<operation>& batch);
  void remove_unused_segments();
  /// A read-only connection to queue.db (the reader's, the counting one).
  std::unique_ptr<database> open_reader() const;
  void clean_segments_if_due(bool committed);
  std::size_t admin(std::string_view queue_id, const char* sql, const char* event_type);

  spool_options options_;
  std::unique_ptr<database> writer_db_;
  std::unique_ptr<body_store> bodies_;
  std::chrono::steady_clock::time_point last_segment_cleanup_;
  std::unique_ptr<writer_statements> statements_;
  std::unique_ptr<database> reader_db_;
  std::unique_ptr<reader_statements> reader_statements_;
  std::mutex reader_mutex_;
  // A campaign's counts read every message of it (a second or more at a million): on a
  // connection of their own, so that lookups on the reader (the campaign feeder's, the API's)
  // do not wait for them. Opened on first use, under counting_mutex_.
  std::unique_ptr<database> counting_db_;
  std::mutex counting_mutex_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<operation> pending_;
  bool stopping_ = false;
  std::function<void(stored_messages)> on_enqueued_;
  std::thread writer_;
};

}  // namespace postern::spool
