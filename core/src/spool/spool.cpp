#include "spool/spool.hpp"

#include "spool/body_store.hpp"
#include "spool/sqlite.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <future>
#include <tuple>

namespace postern::spool {

const char* to_string(recipient_state state) {
  switch (state) {
    case recipient_state::queued: return "queued";
    case recipient_state::deferred: return "deferred";
    case recipient_state::delivered: return "delivered";
    case recipient_state::failed: return "failed";
  }
  return "unknown";
}

namespace {

// The tables; indexes follow once older databases have their newer columns (see migrate).
constexpr const char* tables = R"sql(
CREATE TABLE IF NOT EXISTS messages(
  id TEXT PRIMARY KEY,
  origin_key TEXT,
  source TEXT NOT NULL,
  tenant TEXT NOT NULL,
  stream INTEGER NOT NULL,
  tags TEXT NOT NULL,
  campaign_id TEXT,
  mail_from TEXT NOT NULL,
  envid TEXT,
  ret INTEGER NOT NULL,
  arrival INTEGER NOT NULL,
  size INTEGER NOT NULL,
  held INTEGER NOT NULL DEFAULT 0,
  done_at INTEGER,
  body BLOB,         -- small bodies, in the database
  segment INTEGER,   -- larger ones: their segment file in bodies/ (see body_store)
  seg_offset INTEGER);
CREATE TABLE IF NOT EXISTS recipients(
  message_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  address TEXT NOT NULL,
  orcpt TEXT,
  notify INTEGER NOT NULL,
  state INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt INTEGER NOT NULL,
  last_code INTEGER,
  last_enhanced TEXT,
  last_text TEXT,
  transport TEXT,
  remote_id TEXT,
  PRIMARY KEY(message_id, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  message_id TEXT NOT NULL,
  recipient TEXT,
  type TEXT NOT NULL,
  transport TEXT,
  code INTEGER,
  enhanced TEXT,
  text TEXT);
)sql";

constexpr const char* indexes = R"sql(
-- Only hand-overs that carry a key are indexed: most messages have none.
CREATE UNIQUE INDEX IF NOT EXISTS messages_origin ON messages(origin_key) WHERE origin_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS recipients_pending ON recipients(next_attempt) WHERE state < 2;
CREATE INDEX IF NOT EXISTS events_message ON events(message_id);
-- A campaign's progress and cancel read its messages; its end is when none is open.
CREATE INDEX IF NOT EXISTS messages_campaign ON messages(campaign_id) WHERE campaign_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_campaign_open ON messages(campaign_id)
  WHERE campaign_id IS NOT NULL AND done_at IS NULL;
-- Finished messages whose content is kept for a while (resends): what purge_content drops.
DROP INDEX IF EXISTS messages_kept;
CREATE INDEX IF NOT EXISTS messages_content_kept ON messages(done_at)
  WHERE done_at IS NOT NULL AND (body IS NOT NULL OR segment IS NOT NULL);
-- Whether a segment file is still needed.
CREATE INDEX IF NOT EXISTS messages_segment ON messages(segment) WHERE segment IS NOT NULL;
PRAGMA user_version = 3;  -- schema_version
)sql";

constexpr std::int64_t schema_version = 3;

/// Brings a database of an earlier version up to the columns this one uses. A newer one is
/// refused: an older postern would not know where its large bodies are.
void migrate(database& db) {
  statement version(db, "PRAGMA user_version");
  if (version.step() && version.column_int(0) > schema_version)
    throw std::runtime_error("the spool database was written by a newer postern (version " +
                             std::to_string(version.column_int(0)) + "; this one knows up to " +
                             std::to_string(schema_version) + ")");
  version.reset();
  // Version 2 kept every body in the database; they stay there, and are read from there.
  add_column_if_missing(db, "messages", "segment", "INTEGER");
  add_column_if_missing(db, "messages", "seg_offset", "INTEGER");
}

/// What drops a message's content, wherever it lies.
constexpr const char* no_content = "body = NULL, segment = NULL, seg_offset = NULL";

constexpr const char* message_columns =
    "SELECT id, source, tenant, stream, tags, campaign_id, mail_from, envid, ret, arrival, size, held, body, "
    "segment, seg_offset FROM messages ";

std::string tags_to_json(const std::vector<std::string>& tags) {
  if (tags.empty()) return "[]";
  boost::json::array a;
  for (const auto& t : tags) a.emplace_back(t);
  return boost::json::serialize(a);
}

std::vector<std::string> tags_from_json(const std::string& text) {
  std::vector<std::string> tags;
  boost::system::error_code ec;
  auto value = boost::json::parse(text, ec);
  if (ec || !value.is_array()) return tags;
  for (const auto& t : value.as_array()) {
    if (t.is_string()) tags.emplace_back(t.as_string());
  }
  return tags;
}

void open_pragmas(database& db) {
  db.exec("PRAGMA journal_mode=WAL");
  // FULL: the WAL is fsync'd at every commit, so a commit is durable when it returns.
  db.exec("PRAGMA synchronous=FULL");
  db.exec("PRAGMA foreign_keys=OFF");
  // Checkpoint the WAL every ~32 MiB rather than 4 MiB: fewer pauses in the writer thread.
  db.exec("PRAGMA wal_autocheckpoint=8192");
  db.exec("PRAGMA cache_size=-32768");
}

}  // namespace

/// Statements the writer thread reuses across batches.
struct writer_statements {
  writer_statements(database& db, body_store& bodies, std::size_t inline_body_max)
      : db(db),
        bodies(bodies),
        inline_body_max(inline_body_max),
        find_origin(db, "SELECT id FROM messages WHERE origin_key = ?1"),
        insert_message(db,
                       "INSERT INTO messages(id, origin_key, source, tenant, stream, tags, campaign_id, "
                       "mail_from, envid, ret, arrival, size, body, segment, seg_offset) "
                       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
        insert_recipient(db,
                         "INSERT INTO recipients(message_id, idx, address, orcpt, notify, state, attempts, "
                         "next_attempt) VALUES(?1, ?2, ?3, ?4, ?5, 0, 0, ?6)"),
        insert_event(db,
                     "INSERT INTO events(time, message_id, recipient, type, transport, code, enhanced, text) "
                     "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        update_recipient(db,
                         "UPDATE recipients SET state = ?3, attempts = ?4, next_attempt = ?5, last_code = ?6, "
                         "last_enhanced = ?7, last_text = ?8, transport = ?9, remote_id = ?10 "
                         "WHERE message_id = ?1 AND idx = ?2 AND state < 2"),
        finish_message(db,
                       "UPDATE messages SET done_at = ?2, body = CASE WHEN ?3 THEN NULL ELSE body END, "
                       "segment = CASE WHEN ?3 THEN NULL ELSE segment END, "
                       "seg_offset = CASE WHEN ?3 THEN NULL ELSE seg_offset END "
                       "WHERE id = ?1 AND done_at IS NULL "
                       "AND NOT EXISTS (SELECT 1 FROM recipients WHERE message_id = ?1 AND state < 2)"),
        savepoint(db, "SAVEPOINT op"),
        release(db, "RELEASE op"),
        rollback_to(db, "ROLLBACK TO op") {}

  void insert_entry(const new_entry& e, enqueue_result& result) {
    if (!e.origin_key.empty()) {
      find_origin.reset();
      find_origin.bind(1, e.origin_key);
      if (find_origin.step()) {
        result.queue_id = find_origin.column_text(0);
        result.duplicate = true;
        find_origin.reset();
        return;
      }
      find_origin.reset();
    }
    const auto& m = e.msg;
    const std::int64_t arrival = to_ms(m.arrival);
    insert_message.reset();
    insert_message.bind(1, m.queue_id)
        .bind_or_null(2, e.origin_key)
        .bind(3, e.source)
        .bind(4, m.tenant)
        .bind(5, static_cast<std::int64_t>(m.stream))
        .bind(6, tags_to_json(m.tags))
        .bind_or_null(7, m.campaign_id)
        .bind(8, m.env.mail_from)
        .bind_or_null(9, m.env.envid)
        .bind(10, static_cast<std::int64_t>(m.env.ret))
        .bind(11, arrival)
        .bind(12, static_cast<std::int64_t>(m.raw.size()));
    if (m.raw.size() > inline_body_max) {
      // Written (not yet synced) before the row: the commit syncs the segment first.
      const auto where = bodies.append(m.raw);
      insert_message.bind_null(13).bind(14, where.segment).bind(15, where.offset);
    } else {
      insert_message.bind_blob(13, m.raw);
    }
    insert_message.run();
    for (const auto& r : m.env.recipients) {
      insert_recipient.reset();
      insert_recipient.bind(1, m.queue_id)
          .bind(2, static_cast<std::int64_t>(r.index))
          .bind(3, r.address)
          .bind_or_null(4, r.orcpt)
          .bind(5, static_cast<std::int64_t>(r.notify))
          .bind(6, std::max(arrival, to_ms(e.not_before)));
      insert_recipient.run();
      // No "accepted" event row: the message's arrival is that event (see spool::events).
    }
    result.queue_id = m.queue_id;
  }

  void add_event(const event_record& e) {
    insert_event.reset();
    insert_event.bind(1, to_ms(e.time))
        .bind(2, e.queue_id)
        .bind_or_null(3, e.recipient)
        .bind(4, e.type)
        .bind_or_null(5, e.transport);
    if (e.reply.code) insert_event.bind(6, static_cast<std::int64_t>(e.reply.code));
    insert_event.bind_or_null(7, e.reply.enhanced).bind_or_null(8, e.reply.text);
    insert_event.run();
  }

  /// False when the recipient was no longer pending (the message was deleted meanwhile).
  bool apply_update(const recipient_update& u) {
    update_recipient.reset();
    update_recipient.bind(1, u.queue_id)
        .bind(2, static_cast<std::int64_t>(u.index))
        .bind(3, static_cast<std::int64_t>(u.state))
        .bind(4, static_cast<std::int64_t>(u.attempts))
        .bind(5, to_ms(u.next_attempt))
        .bind(6, static_cast<std::int64_t>(u.reply.code))
        .bind_or_null(7, u.reply.enhanced)
        .bind_or_null(8, u.reply.text)
        .bind_or_null(9, u.transport)
        .bind_or_null(10, u.remote_id);
    update_recipient.run();
    return sqlite3_changes(db.handle()) > 0;
  }

  void finish_if_done(const std::string& queue_id, time_point now) {
    finish_message.reset();
    finish_message.bind(1, queue_id).bind(2, to_ms(now)).bind(3, static_cast<std::int64_t>(drop_content_at_once));
    finish_message.run();
    segments_released = segments_released || (drop_content_at_once && sqlite3_changes(db.handle()) > 0);
  }

  bool drop_content_at_once = true;  // spool_options::keep_content == 0
  // Set when rows stopped referring to segments: the writer then looks for files to delete,
  // at once (clean_now) or at its next clean-up time.
  bool segments_released = false;
  bool clean_now = false;

  database& db;
  body_store& bodies;
  std::size_t inline_body_max;
  statement find_origin, insert_message, insert_recipient, insert_event, update_recipient, finish_message;
  statement savepoint, release, rollback_to;  // prepared once: they run for every operation
};

/// Statements the delivery engine's reads use over and over, prepared once.
struct reader_statements {
  explicit reader_statements(database& db)
      : due(db,
            "SELECT r.message_id FROM recipients r JOIN messages m ON m.id = r.message_id "
            "WHERE r.state < 2 AND r.next_attempt <= ?1 AND m.held = 0 AND m.done_at IS NULL "
            "GROUP BY r.message_id ORDER BY MIN(r.next_attempt) LIMIT ?2"),
        message(db, (std::string(message_columns) + "WHERE id = ?1").c_str()) {}
  statement due, message;
};

spool::spool(spool_options options) : options_(std::move(options)) {
  std::filesystem::create_directories(options_.dir);
  const auto file = options_.dir / "queue.db";
  writer_db_ = std::make_unique<database>(file, false);
  open_pragmas(*writer_db_);
  writer_db_->exec(tables);
  migrate(*writer_db_);
  writer_db_->exec(indexes);
  bodies_ = std::make_unique<body_store>(options_.dir / "bodies", options_.segment_bytes);
  statements_ = std::make_unique<writer_statements>(*writer_db_, *bodies_, options_.inline_body_max);
  remove_unused_segments();  // left by batches a crash cut short
  statements_->drop_content_at_once = options_.keep_content.count() <= 0;
  reader_db_ = open_reader();
  reader_statements_ = std::make_unique<reader_statements>(*reader_db_);
  writer_ = std::thread([this] { writer_loop(); });
}

spool::~spool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  statements_.reset();
  reader_statements_.reset();
}

std::unique_ptr<database> spool::open_reader() const {
  auto db = std::make_unique<database>(options_.dir / "queue.db", false);
  db->exec("PRAGMA query_only=ON");
  return db;
}

void spool::remove_unused_segments() {
  statement used(*writer_db_, "SELECT 1 FROM messages WHERE segment = ?1 LIMIT 1");
  bodies_->remove_unused([&used](std::int64_t segment) {
    used.reset();
    used.bind(1, segment);
    return used.step();
  });
  last_segment_cleanup_ = std::chrono::steady_clock::now();
}

void spool::on_enqueued(std::function<void(stored_messages)> notify) {
  std::lock_guard lock(mutex_);
  on_enqueued_ = std::move(notify);
}

void spool::submit(operation op) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      pending_.push_back(std::move(op));
      wake_.notify_one();
      return;
    }
  }
  op.done("the spool is shutting down");
}

void spool::enqueue(new_entry entry, enqueue_callback done) {
  auto result = std::make_shared<enqueue_result>();
  auto shared_entry = std::make_shared<new_entry>(std::move(entry));
  operation op;
  op.entries.push_back(shared_entry);
  op.duplicate = std::make_shared<std::vector<bool>>(1, false);
  op.apply = [result, shared_entry, duplicate = op.duplicate](writer_statements& s) {
    *result = {};
    s.insert_entry(*shared_entry, *result);
    (*duplicate)[0] = result->duplicate;
  };
  op.done = [result, done = std::move(done)](const std::string& error) {
    if (error.empty()) {
      result->ok = true;
    } else {
      result->ok = false;
      result->duplicate = false;
      result->error = error;
    }
    done(std::move(*result));
  };
  submit(std::move(op));
}

enqueue_result spool::enqueue_wait(new_entry entry) {
  std::promise<enqueue_result> promise;
  auto future = promise.get_future();
  enqueue(std::move(entry), [&promise](enqueue_result r) { promise.set_value(std::move(r)); });
  return future.get();
}

void spool::record(attempt_record record, commit_callback done) {
  auto shared = std::make_shared<attempt_record>(std::move(record));
  operation op;
  for (auto& m : shared->new_messages) op.entries.push_back(std::make_shared<new_entry>(std::move(m)));
  op.duplicate = std::make_shared<std::vector<bool>>(op.entries.size(), false);
  op.apply = [shared, entries = op.entries, duplicate = op.duplicate](writer_statements& s) {
    const auto now = std::chrono::system_clock::now();
    bool changed = shared->updates.empty();
    for (const auto& u : shared->updates) changed = s.apply_update(u) || changed;
    if (!changed) {
      // Every recipient had left the queue while the attempt ran (`queue delete`): its outcome
      // and any report it would send are moot.
      std::fill(duplicate->begin(), duplicate->end(), true);
      return;
    }
    for (const auto& e : shared->events) s.add_event(e);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      enqueue_result r;
      s.insert_entry(*entries[i], r);
      (*duplicate)[i] = r.duplicate;
    }
    for (const auto& u : shared->updates) s.finish_if_done(u.queue_id, now);
  };
  op.done = [done = std::move(done)](const std::string& error) { done(error); };
  submit(std::move(op));
}

std::string spool::record_wait(attempt_record record) {
  std::promise<std::string> promise;
  auto future = promise.get_future();
  this->record(std::move(record), [&promise](std::string error) { promise.set_value(std::move(error)); });
  return future.get();
}

std::string spool::submit_wait(std::function<void(writer_statements&)> apply) {
  std::promise<std::string> promise;
  auto future = promise.get_future();
  operation op;
  op.apply = std::move(apply);
  op.done = [&promise](const std::string& error) { promise.set_value(error); };
  submit(std::move(op));
  return future.get();
}

void spool::wait_idle() {
  // Writes are taken in order: once this empty one is done, everything before it is too.
  submit_wait([](writer_statements&) {});
}

void spool::writer_loop() {
  std::vector<operation> batch;
  bool cache_given_back = true;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      const auto work = [this] { return stopping_ || !pending_.empty(); };
      // The page cache (up to 32 MiB) speeds up bursts; an idle server need not keep it.
      if (!cache_given_back && !wake_.wait_for(lock, std::chrono::seconds(5), work)) {
        lock.unlock();
        sqlite3_db_release_memory(writer_db_->handle());
        cache_given_back = true;
        continue;
      }
      wake_.wait(lock, work);
      if (pending_.empty()) return;  // stopping, and nothing left to write
      while (!pending_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    commit_batch(batch);
    batch.clear();
    cache_given_back = false;
  }
}

void spool::commit_batch(std::vector<operation>& batch) {
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::string> errors(batch.size());
  auto& db = *writer_db_;
  std::string commit_error;
  try {
    db.exec("BEGIN IMMEDIATE");
    for (std::size_t i = 0; i < batch.size(); ++i) {
      // A savepoint per operation: one bad operation fails alone, not the whole batch.
      auto& s = *statements_;
      s.savepoint.reset();
      s.savepoint.run();
      try {
        batch[i].apply(s);
        s.release.reset();
        s.release.run();
      } catch (const std::exception& e) {
        // After some errors (disk full, I/O error) SQLite has already rolled back the whole
        // transaction: then the batch fails as one, with this error.
        if (sqlite3_get_autocommit(db.handle())) throw;
        errors[i] = e.what();
        s.rollback_to.reset();
        s.rollback_to.run();
        s.release.reset();
        s.release.run();
      }
    }
    // Bodies first: once the commit returns, rows may point at them.
    bodies_->sync();
    db.exec("COMMIT");
    bodies_->committed();
  } catch (const std::exception& e) {
    bodies_->rolled_back();
    // Nothing of this batch is stored (disk full, I/O error): every operation fails, and the
    // callers answer a temporary error, so nothing they were handed is lost.
    commit_error = e.what();
    if (!sqlite3_get_autocommit(db.handle())) {
      try {
        db.exec("ROLLBACK");
      } catch (const std::exception&) {
      }
    }
  }
  // Recorded before anyone hears of the commit: a client that scrapes right after its answer
  // sees its own commit counted.
  if (options_.metrics) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    options_.metrics->observe("postern_spool_commit_seconds", seconds);
    options_.metrics->add("postern_spool_commits_total", 1);
    options_.metrics->add("postern_spool_operations_total", static_cast<double>(batch.size()));
  }
  clean_segments_if_due(commit_error.empty());
  stored_messages stored;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const std::string& error = commit_error.empty() ? errors[i] : commit_error;
    batch[i].done(error);
    if (!error.empty()) continue;
    for (std::size_t k = 0; k < batch[i].entries.size(); ++k) {
      // Scheduled messages wait in the spool; the engine's poll finds them when they are due.
      if ((*batch[i].duplicate)[k] || batch[i].entries[k]->not_before > batch[i].entries[k]->msg.arrival) continue;
      stored.push_back(std::make_shared<const postern::message>(std::move(batch[i].entries[k]->msg)));
    }
  }
  if (!stored.empty()) {
    std::function<void(stored_messages)> notify;
    {
      std::lock_guard lock(mutex_);
      notify = on_enqueued_;
    }
    if (notify) notify(std::move(stored));
  }
}



void spool::clean_segments_if_due(bool committed) {
  auto& s = *statements_;
  if (!committed) {
    // Rolled back: rows still refer to what this batch meant to release.
    s.segments_released = s.clean_now = false;
    return;
  }
  // Deleting files costs a directory scan: a busy spool that drops content as messages finish
  // looks every few seconds, an operator's purge or delete at once.
  constexpr auto interval = std::chrono::seconds(5);
  const bool due = s.clean_now || (s.segments_released && std::chrono::steady_clock::now() - last_segment_cleanup_ >= interval);
  if (!due) return;
  s.segments_released = s.clean_now = false;
  try {
    remove_unused_segments();
  } catch (const std::exception&) {
    // The files stay; the next clean-up tries again. Nothing stored depends on it.
  }
}

namespace {

std::vector<recipient_status> read_recipients(database& db, std::string_view queue_id, bool pending_only) {
  statement q(db, pending_only
                      ? "SELECT idx, address, orcpt, notify, state, attempts, next_attempt, last_code, "
                        "last_enhanced, last_text, transport, remote_id FROM recipients "
                        "WHERE message_id = ?1 AND state < 2 ORDER BY idx"
                      : "SELECT idx, address, orcpt, notify, state, attempts, next_attempt, last_code, "
                        "last_enhanced, last_text, transport, remote_id FROM recipients "
                        "WHERE message_id = ?1 ORDER BY idx");
  q.bind(1, queue_id);
  std::vector<recipient_status> out;
  while (q.step()) {
    recipient_status r;
    r.rcpt.index = static_cast<std::uint32_t>(q.column_int(0));
    r.rcpt.address = q.column_text(1);
    r.rcpt.orcpt = q.column_text(2);
    r.rcpt.notify = static_cast<unsigned>(q.column_int(3));
    r.state = static_cast<recipient_state>(q.column_int(4));
    r.attempts = static_cast<std::uint32_t>(q.column_int(5));
    r.next_attempt = from_ms(q.column_int(6));
    r.last_reply = {static_cast<int>(q.column_int(7)), q.column_text(8), q.column_text(9)};
    r.transport = q.column_text(10);
    r.remote_id = q.column_text(11);
    out.push_back(std::move(r));
  }
  return out;
}

/// The message on `q`'s current row, with its recipients from the recipients table.
queued_message read_message(database& db, statement& q, bool with_body, const body_store& bodies) {
  queued_message out;
  auto msg = std::make_shared<postern::message>();
  msg->queue_id = q.column_text(0);
  out.source = q.column_text(1);
  msg->tenant = q.column_text(2);
  msg->stream = static_cast<postern::mail_stream>(q.column_int(3));
  msg->tags = tags_from_json(q.column_text(4));
  msg->campaign_id = q.column_text(5);
  msg->env.mail_from = q.column_text(6);
  msg->env.envid = q.column_text(7);
  msg->env.ret = static_cast<postern::dsn_ret>(q.column_int(8));
  msg->arrival = from_ms(q.column_int(9));
  out.size = static_cast<std::uint64_t>(q.column_int(10));
  out.held = q.column_int(11) != 0;
  if (with_body && !q.column_is_null(13)) {
    msg->raw = bodies.read({q.column_int(13), q.column_int(14)}, out.size);
  } else if (with_body) {
    msg->raw = q.column_blob(12);
  }
  out.recipients = read_recipients(db, msg->queue_id, false);
  for (const auto& r : out.recipients) msg->env.recipients.push_back(r.rcpt);
  out.msg = std::move(msg);
  return out;
}

}  // namespace

std::optional<queued_message> spool::load(std::string_view queue_id, bool with_body) {
  std::lock_guard lock(reader_mutex_);
  auto& q = reader_statements_->message;
  q.reset();
  q.bind(1, queue_id);
  std::optional<queued_message> out;
  if (q.step()) out = read_message(*reader_db_, q, with_body, *bodies_);
  q.reset();
  return out;
}

std::vector<std::string> spool::due(time_point now, std::size_t limit) {
  std::lock_guard lock(reader_mutex_);
  auto& q = reader_statements_->due;
  q.reset();
  q.bind(1, to_ms(now)).bind(2, static_cast<std::int64_t>(limit));
  std::vector<std::string> ids;
  while (q.step()) ids.push_back(q.column_text(0));
  q.reset();
  return ids;
}

std::vector<queued_message> spool::pending() {
  std::lock_guard lock(reader_mutex_);
  // The body column is listed but not read, so SQLite does not copy it out.
  statement q(*reader_db_, (std::string(message_columns) + "WHERE done_at IS NULL ORDER BY arrival").c_str());
  std::vector<queued_message> out;
  while (q.step()) out.push_back(read_message(*reader_db_, q, false, *bodies_));
  return out;
}

std::vector<event_record> spool::events(std::string_view queue_id) {
  std::lock_guard lock(reader_mutex_);
  std::vector<event_record> out;
  // "accepted" is not stored as rows (one fewer write per recipient on the hot path): it is
  // the message's arrival, for each of its recipients.
  statement arrival(*reader_db_,
                    "SELECT m.arrival, r.address FROM messages m JOIN recipients r ON r.message_id = m.id "
                    "WHERE m.id = ?1 ORDER BY r.idx");
  arrival.bind(1, queue_id);
  const std::string id(queue_id);
  while (arrival.step())
    out.push_back({from_ms(arrival.column_int(0)), id, arrival.column_text(1), "accepted", "",
                   {250, "2.0.0", "queued as " + id}});
  statement q(*reader_db_,
              "SELECT time, message_id, recipient, type, transport, code, enhanced, text FROM events "
              "WHERE message_id = ?1 ORDER BY seq");
  q.bind(1, queue_id);
  while (q.step()) {
    out.push_back({from_ms(q.column_int(0)), q.column_text(1), q.column_text(2), q.column_text(3),
                   q.column_text(4), {static_cast<int>(q.column_int(5)), q.column_text(6), q.column_text(7)}});
  }
  return out;
}

namespace {

feed_event feed_row(statement& q) {
  feed_event f;
  f.event.time = from_ms(q.column_int(0));
  f.seq = q.column_int(1);
  f.event.queue_id = q.column_text(2);
  f.event.recipient = q.column_text(3);
  f.event.type = q.column_text(4);
  f.event.transport = q.column_text(5);
  f.event.reply = {static_cast<int>(q.column_int(6)), q.column_text(7), q.column_text(8)};
  f.tenant = q.column_text(9);
  return f;
}

}  // namespace

std::vector<feed_event> spool::tenant_events(std::string_view tenant, std::string_view type, feed_cursor after,
                                             time_point until, std::size_t limit) {
  std::lock_guard lock(reader_mutex_);
  // Arrivals are "accepted" events with a negative seq (unique: rowid and recipient index), so
  // (time, seq) orders the whole feed and serves as its cursor.
  statement q(*reader_db_,
              "SELECT time, seq, id, rcpt, type, transport, code, enhanced, text, tenant FROM ("
              " SELECT m.arrival AS time, -(m.rowid * 100000 + r.idx) AS seq, m.id AS id, r.address AS rcpt,"
              "  'accepted' AS type, NULL AS transport, 250 AS code, '2.0.0' AS enhanced,"
              "  'queued as ' || m.id AS text, m.tenant AS tenant"
              "  FROM messages m JOIN recipients r ON r.message_id = m.id WHERE m.tenant = ?1"
              " UNION ALL"
              " SELECT e.time, e.seq, e.message_id, e.recipient, e.type, e.transport, e.code, e.enhanced, e.text,"
              "  m.tenant FROM events e JOIN messages m ON m.id = e.message_id WHERE m.tenant = ?1)"
              " WHERE (time > ?2 OR (time = ?2 AND seq > ?3)) AND time <= ?6 AND (?4 = '' OR type = ?4)"
              " ORDER BY time, seq LIMIT ?5");
  q.bind(1, tenant).bind(2, to_ms(after.time)).bind(3, after.seq).bind(4, type).bind(5, static_cast<std::int64_t>(limit))
      .bind(6, to_ms(until));
  std::vector<feed_event> out;
  while (q.step()) out.push_back(feed_row(q));
  return out;
}

std::vector<feed_event> spool::events_after(std::int64_t after_seq, std::size_t limit) {
  std::lock_guard lock(reader_mutex_);
  statement q(*reader_db_,
              "SELECT e.time, e.seq, e.message_id, e.recipient, e.type, e.transport, e.code, e.enhanced, e.text,"
              " m.tenant FROM events e JOIN messages m ON m.id = e.message_id WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2");
  q.bind(1, after_seq).bind(2, static_cast<std::int64_t>(limit));
  std::vector<feed_event> out;
  while (q.step()) out.push_back(feed_row(q));
  return out;
}

spool_stats spool::stats() {
  std::lock_guard lock(reader_mutex_);
  spool_stats s;
  // Both walk the recipients_pending index (state < 2), so they cost what is pending, not the
  // spool's history; a message is unfinished exactly while one of its recipients is pending.
  statement q(*reader_db_, "SELECT state, COUNT(*) FROM recipients WHERE state < 2 GROUP BY state");
  while (q.step()) {
    const auto n = static_cast<std::uint64_t>(q.column_int(1));
    if (static_cast<recipient_state>(q.column_int(0)) == recipient_state::queued) s.queued = n;
    else s.deferred = n;
  }
  statement m(*reader_db_, "SELECT COUNT(DISTINCT message_id) FROM recipients WHERE state < 2");
  if (m.step()) s.messages_pending = static_cast<std::uint64_t>(m.column_int(0));
  return s;
}

spool_stats spool::campaign_stats(std::string_view campaign_id) {
  std::lock_guard lock(counting_mutex_);
  if (!counting_db_) {  // opened on first use: most processes that open the spool never count
    counting_db_ = open_reader();
  }
  spool_stats s;
  statement q(*counting_db_, "SELECT r.state, COUNT(*), SUM(r.last_text = 'campaign cancelled') FROM messages m "
                           "JOIN recipients r ON r.message_id = m.id WHERE m.campaign_id = ?1 GROUP BY r.state");
  q.bind(1, campaign_id);
  while (q.step()) {
    const auto n = static_cast<std::uint64_t>(q.column_int(1));
    if (static_cast<recipient_state>(q.column_int(0)) == recipient_state::failed)
      s.cancelled = static_cast<std::uint64_t>(q.column_int(2));
    switch (static_cast<recipient_state>(q.column_int(0))) {
      case recipient_state::queued: s.queued = n; break;
      case recipient_state::deferred: s.deferred = n; break;
      case recipient_state::delivered: s.delivered = n; break;
      case recipient_state::failed: s.failed = n; break;
    }
  }
  statement m(*counting_db_, "SELECT COUNT(*) FROM messages WHERE campaign_id = ?1 AND done_at IS NULL");
  m.bind(1, campaign_id);
  if (m.step()) s.messages_pending = static_cast<std::uint64_t>(m.column_int(0));
  return s;
}

bool spool::campaign_open(std::string_view campaign_id) {
  std::lock_guard lock(reader_mutex_);
  statement q(*reader_db_, "SELECT 1 FROM messages WHERE campaign_id = ?1 AND done_at IS NULL LIMIT 1");
  q.bind(1, campaign_id);
  return q.step();
}

std::unordered_map<std::string, std::string> spool::find_origins(const std::vector<std::string>& origin_keys) {
  std::lock_guard lock(reader_mutex_);
  statement q(*reader_db_, "SELECT id FROM messages WHERE origin_key = ?1");
  std::unordered_map<std::string, std::string> found;
  for (const auto& key : origin_keys) {
    q.bind(1, key);
    if (q.step()) found.emplace(key, q.column_text(0));
    q.reset();
  }
  return found;
}

std::vector<std::string> spool::cancel_campaign(std::string_view campaign_id) {
  std::vector<std::string> cancelled;
  const std::string id(campaign_id);
  const auto now = std::chrono::system_clock::now();
  const std::string error = submit_wait([&](writer_statements& s) {
    std::vector<std::string> ids;
    statement open(s.db, "SELECT id FROM messages WHERE campaign_id = ?1 AND done_at IS NULL");
    open.bind(1, id);
    while (open.step()) ids.push_back(open.column_text(0));
    statement mark(s.db, "UPDATE recipients SET state = 3, last_code = 550, last_enhanced = '5.0.0', "
                         "last_text = 'campaign cancelled' WHERE message_id = ?1 AND state < 2");
    statement drop(s.db, (std::string("UPDATE messages SET ") + no_content +
                          ", done_at = ?2 WHERE id = ?1 AND done_at IS NULL").c_str());
    for (const auto& message : ids) {
      mark.bind(1, message);
      mark.run();
      drop.bind(1, message).bind(2, to_ms(now));
      drop.run();
      s.add_event({now, message, "", "deleted", "", {550, "5.0.0", "campaign cancelled"}});
    }
    s.clean_now = s.clean_now || !ids.empty();
    cancelled = std::move(ids);
  });
  if (!error.empty()) throw std::runtime_error(error);
  return cancelled;
}

std::size_t spool::admin(std::string_view queue_id, const char* sql, const char* event_type) {
  std::size_t changed = 0;
  const std::string id(queue_id);
  const std::string error = submit_wait([&](writer_statements& s) {
    statement change(s.db, sql);
    change.bind(1, id);
    change.run();
    changed = static_cast<std::size_t>(sqlite3_changes(s.db.handle()));
    if (changed) s.add_event({std::chrono::system_clock::now(), id, "", event_type, "", {}});
  });
  if (!error.empty()) throw std::runtime_error(error);
  return changed;
}

std::size_t spool::hold(std::string_view queue_id) {
  return admin(queue_id, "UPDATE messages SET held = 1 WHERE id = ?1 AND held = 0 AND done_at IS NULL", "held");
}

std::size_t spool::release(std::string_view queue_id) {
  return admin(queue_id, "UPDATE messages SET held = 0 WHERE id = ?1 AND held = 1", "released");
}

std::size_t spool::remove(std::string_view queue_id) {
  // Recipients of a deleted message are marked failed so that the message counts as done;
  // the body goes at once. The event log keeps the deletion.
  std::size_t changed = 0;
  const std::string id(queue_id);
  const auto now = std::chrono::system_clock::now();
  const std::string error = submit_wait([&](writer_statements& s) {
    statement mark(s.db, "UPDATE recipients SET state = 3, last_code = 550, last_enhanced = '5.0.0', "
                         "last_text = 'deleted by the operator' WHERE message_id = ?1 AND state < 2");
    mark.bind(1, id);
    mark.run();
    statement drop(s.db, (std::string("UPDATE messages SET ") + no_content +
                          ", done_at = ?2 WHERE id = ?1 AND done_at IS NULL").c_str());
    drop.bind(1, id).bind(2, to_ms(now));
    drop.run();
    changed = static_cast<std::size_t>(sqlite3_changes(s.db.handle()));
    s.clean_now = s.clean_now || changed > 0;
    if (changed) s.add_event({now, id, "", "deleted", "", {}});
  });
  if (!error.empty()) throw std::runtime_error(error);
  return changed;
}

std::size_t spool::in_rounds(const std::atomic<bool>* stop,
                             const std::function<std::pair<std::size_t, bool>(writer_statements&)>& round) {
  std::size_t total = 0;
  for (bool more = true; more && !(stop && *stop);) {
    std::size_t done = 0;
    const std::string error = submit_wait([&](writer_statements& s) {
      std::tie(done, more) = round(s);
      s.clean_now = s.clean_now || done > 0;  // content went: segments may be free
    });
    if (!error.empty()) throw std::runtime_error(error);
    total += done;
  }
  return total;
}

namespace {

// Purges go in rounds of this many messages, each its own writer operation: a busy gateway
// finishes hundreds of thousands of messages between two purges, and one statement over all
// of them would hold the writer thread (and every client waiting for its 250) for seconds.
constexpr std::int64_t purge_round = 5000;

/// One round of purge_history: the messages after `after_rowid`, oldest first, that finished
/// before `cutoff`; the walk ends at the first that arrived after it (nothing later finished
/// earlier than its arrival). Moves `after_rowid` on; how many it deleted, and whether to go on.
std::pair<std::size_t, bool> delete_finished(database& db, std::int64_t cutoff, std::int64_t& after_rowid,
                                             const std::function<bool(std::string_view)>& keep_campaign) {
  statement next(db, "SELECT rowid, id, arrival, done_at, campaign_id FROM messages WHERE rowid > ?1 ORDER BY rowid LIMIT ?2");
  next.bind(1, after_rowid).bind(2, purge_round);
  std::vector<std::pair<std::int64_t, std::string>> doomed;
  std::int64_t seen = 0;
  bool more = true;
  while (more && next.step()) {
    ++seen;
    after_rowid = next.column_int(0);
    more = next.column_int(2) < cutoff;
    // A campaign whose end is not reported yet still counts its messages' states.
    const bool kept = keep_campaign && !next.column_is_null(4) && keep_campaign(next.column_text(4));
    if (more && !kept && !next.column_is_null(3) && next.column_int(3) < cutoff)
      doomed.emplace_back(after_rowid, next.column_text(1));
  }
  next.reset();
  statement recipients(db, "DELETE FROM recipients WHERE message_id = ?1");
  // The newest event row stays: seq is its rowid, and SQLite would hand a deleted highest seq
  // out again, behind the webhook dispatcher's cursor.
  statement events(db, "DELETE FROM events WHERE message_id = ?1 AND seq < (SELECT MAX(seq) FROM events)");
  statement message(db, "DELETE FROM messages WHERE rowid = ?1");
  for (const auto& [rowid, id] : doomed) {
    recipients.bind(1, id);
    recipients.run();
    events.bind(1, id);
    events.run();
    message.bind(1, rowid);
    message.run();
  }
  return {doomed.size(), more && seen == purge_round};
}

}  // namespace

std::size_t spool::purge_content(time_point now, const std::atomic<bool>* stop) {
  const std::string sql = std::string("UPDATE messages SET ") + no_content +
                          " WHERE rowid IN (SELECT rowid FROM messages WHERE done_at IS NOT NULL"
                          " AND (body IS NOT NULL OR segment IS NOT NULL) AND done_at < ?1 LIMIT ?2)";
  const auto before = to_ms(now - options_.keep_content);
  return in_rounds(stop, [&](writer_statements& s) {
    statement drop(s.db, sql.c_str());
    drop.bind(1, before).bind(2, purge_round);
    drop.run();
    const auto changed = static_cast<std::size_t>(sqlite3_changes(s.db.handle()));
    return std::pair{changed, changed == static_cast<std::size_t>(purge_round)};
  });
}

std::size_t spool::purge_history(time_point before, const std::function<bool(std::string_view)>& keep_campaign,
                                 const std::atomic<bool>* stop) {
  std::int64_t after_rowid = 0;
  return in_rounds(stop, [&](writer_statements& s) {
    return delete_finished(s.db, to_ms(before), after_rowid, keep_campaign);
  });
}

std::size_t spool::flush(std::string_view queue_id) {
  std::size_t changed = 0;
  const std::string id(queue_id);
  const auto now = to_ms(std::chrono::system_clock::now());
  const std::string error = submit_wait([&](writer_statements& s) {
    statement q(s.db, id.empty()
                          // Never tried and due later: scheduled (send_at), not deferred; left alone.
                          ? "UPDATE recipients SET next_attempt = ?2 WHERE state < 2 AND next_attempt > ?2 "
                            "AND attempts > 0"
                          : "UPDATE recipients SET next_attempt = ?2 WHERE message_id = ?1 AND state < 2 "
                            "AND next_attempt > ?2 AND attempts > 0");
    q.bind_or_null(1, id).bind(2, now);
    q.run();
    changed = static_cast<std::size_t>(sqlite3_changes(s.db.handle()));
  });
  if (!error.empty()) throw std::runtime_error(error);
  return changed;
}

}  // namespace postern::spool
