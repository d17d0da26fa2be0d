#include "campaign/campaign_store.hpp"

#include "spool/sqlite.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

namespace postern::campaign {
namespace {

using spool::from_ms;
using spool::statement;
using spool::to_ms;

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS campaigns(
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  state TEXT NOT NULL,
  definition TEXT NOT NULL,
  audience TEXT NOT NULL,
  mail_from TEXT NOT NULL,
  raw BLOB NOT NULL,
  tags TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  resend INTEGER NOT NULL,
  list TEXT NOT NULL,
  selected INTEGER NOT NULL,
  cost INTEGER NOT NULL,
  created INTEGER NOT NULL,
  started INTEGER NOT NULL DEFAULT 0,
  finished INTEGER NOT NULL DEFAULT 0,
  end_reported INTEGER NOT NULL DEFAULT 0,
  final_spool TEXT);
CREATE INDEX IF NOT EXISTS campaigns_tenant ON campaigns(tenant, created);
CREATE INDEX IF NOT EXISTS campaigns_fingerprint ON campaigns(tenant, fingerprint);
CREATE INDEX IF NOT EXISTS campaigns_open ON campaigns(state, end_reported);
CREATE TABLE IF NOT EXISTS campaign_recipients(
  campaign TEXT NOT NULL,
  seq INTEGER NOT NULL,
  email TEXT NOT NULL,
  state INTEGER NOT NULL,
  policy TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  queue_id TEXT NOT NULL DEFAULT '',
  cost INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(campaign, seq)) WITHOUT ROWID;
-- The feeder takes pending recipients in order; progress counts by state. Queries by state
-- name this index (INDEXED BY): without statistics SQLite prefers the primary key and walks
-- every recipient of the campaign to find the few pending ones.
CREATE INDEX IF NOT EXISTS campaign_recipients_state ON campaign_recipients(campaign, state, seq);
CREATE TABLE IF NOT EXISTS audiences(
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  rule TEXT NOT NULL,
  created INTEGER NOT NULL,
  PRIMARY KEY(tenant, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS plugin_data(
  plugin TEXT NOT NULL,
  key TEXT NOT NULL,
  value,
  PRIMARY KEY(plugin, key)) WITHOUT ROWID;
)sql";

constexpr const char* upsert_data =
    "INSERT INTO plugin_data(plugin, key, value) VALUES(?1, ?2, ?3) ON CONFLICT(plugin, key) DO UPDATE SET value = ?3";

constexpr const char* campaign_columns =
    "SELECT id, tenant, name, state, definition, fingerprint, resend, list, selected, cost, created, finished, "
    "end_reported, audience, mail_from, raw, tags, started, final_spool FROM campaigns ";

/// final_spool as stored: "queued deferred delivered failed cancelled".
std::string final_spool_text(const spool::spool_stats& s) {
  return std::to_string(s.queued) + " " + std::to_string(s.deferred) + " " + std::to_string(s.delivered) + " " +
         std::to_string(s.failed) + " " + std::to_string(s.cancelled);
}

std::optional<spool::spool_stats> final_spool_from(const std::string& text) {
  spool::spool_stats s;
  std::istringstream in(text);
  if (!(in >> s.queued >> s.deferred >> s.delivered >> s.failed >> s.cancelled)) return std::nullopt;
  return s;
}

std::string join_lines(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : "\n") + s;
  return out;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t start = 0; start < text.size();) {
    const auto end = std::min(text.find('\n', start), text.size());
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

campaign_record campaign_row(statement& q) {
  campaign_record r;
  r.id = q.column_text(0);
  r.tenant = q.column_text(1);
  r.name = q.column_text(2);
  r.state = campaign_state_from(q.column_text(3)).value_or(campaign_state::cancelled);
  r.definition = q.column_text(4);
  r.fingerprint = q.column_text(5);
  r.resend = q.column_int(6) != 0;
  r.list = q.column_text(7);
  r.selected = static_cast<std::uint64_t>(q.column_int(8));
  r.cost = q.column_int(9);
  r.created = from_ms(q.column_int(10));
  r.finished = from_ms(q.column_int(11));
  r.end_reported = q.column_int(12) != 0;
  r.audience = q.column_text(13);
  r.mail_from = q.column_text(14);
  r.raw = q.column_blob(15);
  r.tags = split_lines(q.column_text(16));
  r.started = from_ms(q.column_int(17));
  if (!q.column_is_null(18)) r.final_spool = final_spool_from(q.column_text(18));
  return r;
}

recipient_row recipient_from(statement& q) {
  recipient_row r;
  r.seq = q.column_int(0);
  r.email = q.column_text(1);
  r.state = static_cast<recipient_state>(q.column_int(2));
  r.policy = q.column_text(3);
  r.reason = q.column_text(4);
  r.queue_id = q.column_text(5);
  return r;
}

}  // namespace

const char* to_string(campaign_state state) {
  switch (state) {
    case campaign_state::draft: return "draft";
    case campaign_state::starting: return "starting";
    case campaign_state::sending: return "sending";
    case campaign_state::paused: return "paused";
    case campaign_state::finished: return "finished";
    case campaign_state::cancelled: return "cancelled";
  }
  return "cancelled";
}

std::optional<campaign_state> campaign_state_from(std::string_view name) {
  for (auto s : {campaign_state::draft, campaign_state::starting, campaign_state::sending, campaign_state::paused, campaign_state::finished, campaign_state::cancelled})
    if (name == to_string(s)) return s;
  return std::nullopt;
}

const char* to_string(recipient_state state) {
  switch (state) {
    case recipient_state::pending: return "pending";
    case recipient_state::queued: return "queued";
    case recipient_state::dropped: return "dropped";
    case recipient_state::cancelled: return "cancelled";
  }
  return "pending";
}

campaign_store::campaign_store(const std::filesystem::path& file) {
  std::filesystem::create_directories(file.parent_path());
  db_ = std::make_unique<spool::database>(file, false);
  db_->exec("PRAGMA journal_mode=WAL");
  db_->exec("PRAGMA synchronous=FULL");  // a campaign's start (and its credits) is durable when it returns
  db_->exec(schema);
  spool::add_column_if_missing(*db_, "campaigns", "final_spool", "TEXT");  // databases from before it
}

campaign_store::~campaign_store() = default;

void campaign_store::transaction(const std::function<void()>& body) {
  std::lock_guard lock(mutex_);
  if (depth_ > 0) {  // joins the outer transaction, which commits or rolls back all of it
    ++depth_;
    try {
      body();
    } catch (...) {
      --depth_;
      throw;
    }
    --depth_;
    return;
  }
  depth_ = 1;
  try {
    spool::in_transaction(*db_, body);
  } catch (...) {
    depth_ = 0;
    throw;
  }
  depth_ = 0;
}

template <class Body>
auto campaign_store::locked_write(Body body) {
  // Outside a transaction each write is its own (autocommit, fsync'd by synchronous=FULL).
  std::lock_guard lock(mutex_);
  return body();
}

template <class Use>
auto campaign_store::with_statement(const char* sql, Use use) {
  auto& q = statements_[sql];
  if (!q) q = std::make_unique<statement>(*db_, sql);
  struct reset_after {
    statement& q;
    ~reset_after() { q.reset(); }  // a statement left on a row would hold its read snapshot open
  } guard{*q};
  return use(*q);
}

void campaign_store::keep_if(const std::function<bool()>& body) {
  static constexpr const char* begin = "SAVEPOINT keep_if";
  static constexpr const char* undo = "ROLLBACK TO keep_if";
  static constexpr const char* end = "RELEASE keep_if";
  std::lock_guard lock(mutex_);
  if (depth_ == 0) throw std::logic_error("campaign_store::keep_if outside a transaction");
  const auto run = [&](const char* sql) { with_statement(sql, [](statement& q) { q.run(); }); };
  run(begin);
  bool keep = false;
  try {
    keep = body();
  } catch (...) {
    // Unless SQLite itself ended the transaction (a full disk, an I/O error): then there is
    // no savepoint left, and the error to report is the one in flight.
    if (!sqlite3_get_autocommit(db_->handle())) {
      run(undo);
      run(end);
    }
    throw;
  }
  if (!keep) run(undo);
  run(end);
}

void campaign_store::insert(const campaign_record& r) {
  locked_write([&] {
    statement q(*db_, "INSERT INTO campaigns(id, tenant, name, state, definition, fingerprint, resend, list, selected, "
                      "cost, created, audience, mail_from, raw, tags) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)");
    q.bind(1, r.id).bind(2, r.tenant).bind(3, r.name).bind(4, to_string(r.state)).bind(5, r.definition);
    q.bind(6, r.fingerprint).bind(7, static_cast<std::int64_t>(r.resend)).bind(8, r.list);
    q.bind(9, static_cast<std::int64_t>(r.selected)).bind(10, r.cost).bind(11, to_ms(r.created));
    q.bind(12, r.audience).bind(13, r.mail_from).bind_blob(14, r.raw).bind(15, join_lines(r.tags));
    q.run();
  });
}

void campaign_store::add_recipients(std::string_view campaign, const std::vector<recipient_row>& rows) {
  locked_write([&] {
    statement next(*db_, "SELECT COALESCE(MAX(seq), 0) FROM campaign_recipients WHERE campaign = ?1");
    next.bind(1, campaign);
    std::int64_t seq = next.step() ? next.column_int(0) : 0;
    next.reset();  // no read left open when the write transaction begins
    statement q(*db_, "INSERT INTO campaign_recipients(campaign, seq, email, state, policy, reason, cost) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    transaction([&] {  // many rows, one commit (joins an outer transaction)
      for (const auto& r : rows) {
        q.bind(1, campaign).bind(2, ++seq).bind(3, r.email).bind(4, static_cast<std::int64_t>(r.state));
        q.bind(5, r.policy).bind(6, r.reason).bind(7, r.cost);
        q.run();
      }
    });
  });
}

std::optional<campaign_record> campaign_store::find(std::string_view tenant, std::string_view id) {
  std::lock_guard lock(mutex_);
  statement q(*db_, (std::string(campaign_columns) + "WHERE tenant = ?1 AND id = ?2").c_str());
  q.bind(1, tenant).bind(2, id);
  if (!q.step()) return std::nullopt;
  return campaign_row(q);
}

std::optional<campaign_state> campaign_store::state_of(std::string_view id) {
  std::lock_guard lock(mutex_);
  statement q(*db_, "SELECT state FROM campaigns WHERE id = ?1");
  q.bind(1, id);
  if (!q.step()) return std::nullopt;
  return campaign_state_from(q.column_text(0));
}

std::vector<campaign_record> campaign_store::list(std::string_view tenant, std::size_t limit, time_point before) {
  std::lock_guard lock(mutex_);
  statement q(*db_, (std::string(campaign_columns) +
                     "WHERE tenant = ?1 AND (?2 = 0 OR created < ?2) ORDER BY created DESC, id DESC LIMIT ?3")
                        .c_str());
  q.bind(1, tenant).bind(2, to_ms(before)).bind(3, static_cast<std::int64_t>(limit));
  std::vector<campaign_record> out;
  while (q.step()) out.push_back(campaign_row(q));
  return out;
}

std::vector<campaign_record> campaign_store::unfinished() {
  std::lock_guard lock(mutex_);
  statement q(*db_, (std::string(campaign_columns) +
                     "WHERE state NOT IN ('draft', 'starting') AND (state IN ('sending', 'paused') OR end_reported = 0) "
                     "ORDER BY created")
                        .c_str());
  std::vector<campaign_record> out;
  while (q.step()) out.push_back(campaign_row(q));
  return out;
}

std::optional<campaign_record> campaign_store::find_by_fingerprint(std::string_view tenant, std::string_view fingerprint) {
  std::lock_guard lock(mutex_);
  statement q(*db_, (std::string(campaign_columns) +
                     "WHERE tenant = ?1 AND fingerprint = ?2 ORDER BY created DESC LIMIT 1")
                        .c_str());
  q.bind(1, tenant).bind(2, fingerprint);
  if (!q.step()) return std::nullopt;
  return campaign_row(q);
}

bool campaign_store::set_state(std::string_view id, campaign_state to, std::initializer_list<campaign_state> from,
                               time_point now) {
  return locked_write([&] {
    bool changed = false;
    for (auto f : from) {
      statement q(*db_, "UPDATE campaigns SET state = ?2, finished = CASE WHEN ?2 IN ('finished', 'cancelled') "
                        "THEN ?4 ELSE finished END WHERE id = ?1 AND state = ?3");
      q.bind(1, id).bind(2, to_string(to)).bind(3, to_string(f)).bind(4, to_ms(now));
      q.run();
      changed = changed || q.changes() > 0;
    }
    return changed;
  });
}

void campaign_store::set_totals(std::string_view id, std::uint64_t selected, std::int64_t cost, time_point started) {
  locked_write([&] {
    statement q(*db_, "UPDATE campaigns SET selected = ?2, cost = ?3, started = ?4 WHERE id = ?1");
    q.bind(1, id).bind(2, static_cast<std::int64_t>(selected)).bind(3, cost).bind(4, to_ms(started));
    q.run();
  });
}

void campaign_store::abandon(std::string_view id, bool keep_draft) {
  transaction([&] {
    statement rows(*db_, "DELETE FROM campaign_recipients WHERE campaign = ?1");
    rows.bind(1, id);
    rows.run();
    statement c(*db_, keep_draft ? "UPDATE campaigns SET state = 'draft', selected = 0, cost = 0, started = 0 "
                                   "WHERE id = ?1"
                                 : "DELETE FROM campaigns WHERE id = ?1");
    c.bind(1, id);
    c.run();
  });
}

std::vector<campaign_record> campaign_store::starting() {
  std::lock_guard lock(mutex_);
  statement q(*db_, (std::string(campaign_columns) + "WHERE state = 'starting'").c_str());
  std::vector<campaign_record> out;
  while (q.step()) out.push_back(campaign_row(q));
  return out;
}

std::vector<std::string> campaign_store::ended_without_final_spool() {
  std::lock_guard lock(mutex_);
  statement q(*db_, "SELECT id FROM campaigns WHERE end_reported = 1 AND final_spool IS NULL");
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.column_text(0));
  return out;
}

void campaign_store::set_final_spool(std::string_view id, const spool::spool_stats& final_spool) {
  locked_write([&] {
    statement q(*db_, "UPDATE campaigns SET final_spool = ?2 WHERE id = ?1");
    q.bind(1, id).bind(2, final_spool_text(final_spool));
    q.run();
  });
}

std::int64_t campaign_store::unsent_cost(std::string_view campaign) {
  std::lock_guard lock(mutex_);
  statement q(*db_, "SELECT COALESCE(SUM(cost), 0) FROM campaign_recipients INDEXED BY campaign_recipients_state "
                    "WHERE campaign = ?1 AND state IN (2, 3)");
  q.bind(1, campaign);
  return q.step() ? q.column_int(0) : 0;
}

void campaign_store::mark_cancelled(std::string_view campaign, const std::vector<std::string>& queue_ids) {
  // One walk over the campaign's queued recipients: queue_id has no index (the feeder would
  // pay for one on every update), and a lookup per id would scan them all once per id.
  const std::unordered_set<std::string> cancelled(queue_ids.begin(), queue_ids.end());
  transaction([&] {
    statement queued(*db_, "SELECT seq, queue_id FROM campaign_recipients INDEXED BY campaign_recipients_state "
                           "WHERE campaign = ?1 AND state = 1");
    statement mark(*db_, "UPDATE campaign_recipients SET state = 3 WHERE campaign = ?1 AND seq = ?2");
    queued.bind(1, campaign);
    std::vector<std::int64_t> seqs;
    while (queued.step())
      if (cancelled.contains(queued.column_text(1))) seqs.push_back(queued.column_int(0));
    for (const auto seq : seqs) {
      mark.bind(1, campaign).bind(2, seq);
      mark.run();
    }
  });
}

void campaign_store::mark_end_reported(std::string_view id, const spool::spool_stats& final_spool) {
  locked_write([&] {
    statement q(*db_, "UPDATE campaigns SET end_reported = 1, final_spool = ?2 WHERE id = ?1");
    q.bind(1, id).bind(2, final_spool_text(final_spool));
    q.run();
  });
}

std::vector<recipient_row> campaign_store::pending(std::string_view campaign, std::size_t limit,
                                                   std::int64_t after_seq) {
  std::lock_guard lock(mutex_);
  statement q(*db_, "SELECT seq, email, state, policy, reason, queue_id FROM campaign_recipients "
                    "INDEXED BY campaign_recipients_state WHERE campaign = ?1 AND state = 0 AND seq > ?3 "
                    "ORDER BY seq LIMIT ?2");
  q.bind(1, campaign).bind(2, static_cast<std::int64_t>(limit)).bind(3, after_seq);
  std::vector<recipient_row> out;
  while (q.step()) out.push_back(recipient_from(q));
  return out;
}

void campaign_store::update(std::string_view campaign, const std::vector<recipient_row>& rows) {
  const auto write = [&] {
    statement q(*db_, "UPDATE campaign_recipients SET state = ?3, policy = ?4, reason = ?5, queue_id = ?6 "
                      "WHERE campaign = ?1 AND seq = ?2 AND state = 0");
    for (const auto& r : rows) {
      q.bind(1, campaign).bind(2, r.seq).bind(3, static_cast<std::int64_t>(r.state));
      q.bind(4, r.policy).bind(5, r.reason).bind(6, r.queue_id);
      q.run();
    }
  };
  // Committed without an fsync of its own: the next synced commit (the next round's checks)
  // covers it, and a crash that loses it loses nothing the feeder cannot find again (the
  // spool keeps queued recipients under their origin keys; a drop is decided again).
  std::lock_guard lock(mutex_);
  if (depth_ > 0) return transaction(write);
  db_->exec("PRAGMA synchronous=NORMAL");
  try {
    transaction(write);
  } catch (...) {
    db_->exec("PRAGMA synchronous=FULL");
    throw;
  }
  db_->exec("PRAGMA synchronous=FULL");
}

std::uint64_t campaign_store::cancel_pending(std::string_view campaign) {
  return locked_write([&] {
    statement q(*db_, "UPDATE campaign_recipients SET state = 3 WHERE campaign = ?1 AND state = 0");
    q.bind(1, campaign);
    q.run();
    return static_cast<std::uint64_t>(q.changes());
  });
}

recipient_counts campaign_store::counts(std::string_view campaign) {
  std::lock_guard lock(mutex_);
  statement q(*db_, "SELECT state, COUNT(*) FROM campaign_recipients WHERE campaign = ?1 GROUP BY state");
  q.bind(1, campaign);
  recipient_counts c;
  while (q.step()) {
    const auto n = static_cast<std::uint64_t>(q.column_int(1));
    switch (static_cast<recipient_state>(q.column_int(0))) {
      case recipient_state::pending: c.pending = n; break;
      case recipient_state::queued: c.queued = n; break;
      case recipient_state::dropped: c.dropped = n; break;
      case recipient_state::cancelled: c.cancelled = n; break;
    }
  }
  return c;
}

std::vector<drop_count> campaign_store::drops(std::string_view campaign) {
  std::lock_guard lock(mutex_);
  statement q(*db_, "SELECT policy, reason, COUNT(*) FROM campaign_recipients INDEXED BY campaign_recipients_state "
                    "WHERE campaign = ?1 AND state = 2 "
                    "GROUP BY policy, reason ORDER BY policy, reason");
  q.bind(1, campaign);
  std::vector<drop_count> out;
  while (q.step()) out.push_back({q.column_text(0), q.column_text(1), static_cast<std::uint64_t>(q.column_int(2))});
  return out;
}

std::vector<recipient_row> campaign_store::recipients(std::string_view campaign, std::optional<recipient_state> state,
                                                      std::int64_t after_seq, std::size_t limit) {
  std::lock_guard lock(mutex_);
  statement q(*db_, "SELECT seq, email, state, policy, reason, queue_id FROM campaign_recipients "
                    "WHERE campaign = ?1 AND (?2 < 0 OR state = ?2) AND seq > ?3 ORDER BY seq LIMIT ?4");
  q.bind(1, campaign).bind(2, state ? static_cast<std::int64_t>(*state) : std::int64_t{-1});
  q.bind(3, after_seq).bind(4, static_cast<std::int64_t>(limit));
  std::vector<recipient_row> out;
  while (q.step()) out.push_back(recipient_from(q));
  return out;
}

void campaign_store::save_audience(std::string_view tenant, const saved_audience& a) {
  locked_write([&] {
    statement q(*db_, "INSERT INTO audiences(tenant, name, rule, created) VALUES(?1, ?2, ?3, ?4) "
                      "ON CONFLICT(tenant, name) DO UPDATE SET rule = ?3");
    q.bind(1, tenant).bind(2, a.name).bind(3, a.rule).bind(4, to_ms(a.created));
    q.run();
  });
}

std::optional<saved_audience> campaign_store::find_audience(std::string_view tenant, std::string_view name) {
  std::lock_guard lock(mutex_);
  statement q(*db_, "SELECT name, rule, created FROM audiences WHERE tenant = ?1 AND name = ?2");
  q.bind(1, tenant).bind(2, name);
  if (!q.step()) return std::nullopt;
  return saved_audience{q.column_text(0), q.column_text(1), from_ms(q.column_int(2))};
}

std::vector<saved_audience> campaign_store::audiences(std::string_view tenant) {
  std::lock_guard lock(mutex_);
  statement q(*db_, "SELECT name, rule, created FROM audiences WHERE tenant = ?1 ORDER BY name");
  q.bind(1, tenant);
  std::vector<saved_audience> out;
  while (q.step()) out.push_back({q.column_text(0), q.column_text(1), from_ms(q.column_int(2))});
  return out;
}

bool campaign_store::delete_audience(std::string_view tenant, std::string_view name) {
  return locked_write([&] {
    statement q(*db_, "DELETE FROM audiences WHERE tenant = ?1 AND name = ?2");
    q.bind(1, tenant).bind(2, name);
    q.run();
    return q.changes() > 0;
  });
}

std::optional<std::string> campaign_store::data_get(std::string_view plugin, std::string_view key) {
  static constexpr const char* sql = "SELECT CAST(value AS TEXT) FROM plugin_data WHERE plugin = ?1 AND key = ?2";
  std::lock_guard lock(mutex_);
  return with_statement(sql, [&](statement& q) -> std::optional<std::string> {
    q.bind(1, plugin).bind(2, key);
    if (!q.step()) return std::nullopt;
    return q.column_text(0);
  });
}

void campaign_store::data_put(std::string_view plugin, std::string_view key, std::string_view value) {
  locked_write([&] {
    with_statement(upsert_data, [&](statement& q) {
      q.bind(1, plugin).bind(2, key).bind(3, value);
      q.run();
    });
  });
}

bool campaign_store::data_put_new(std::string_view plugin, std::string_view key, std::string_view value) {
  return locked_write([&] {
    statement q(*db_, "INSERT OR IGNORE INTO plugin_data(plugin, key, value) VALUES(?1, ?2, ?3)");
    q.bind(1, plugin).bind(2, key).bind(3, value);
    q.run();
    return q.changes() > 0;
  });
}

std::optional<std::int64_t> campaign_store::data_add(std::string_view plugin, std::string_view key, std::int64_t delta,
                                                     std::int64_t ceiling) {
  static constexpr const char* read_integer =
      "SELECT CAST(value AS INTEGER) FROM plugin_data WHERE plugin = ?1 AND key = ?2";
  std::optional<std::int64_t> result;
  // Read and write under one lock and one transaction: two callers never both pass the ceiling.
  transaction([&] {
    const std::int64_t current = with_statement(read_integer, [&](statement& q) {
      q.bind(1, plugin).bind(2, key);
      return q.step() ? q.column_int(0) : std::int64_t{0};
    });
    if (current + delta > ceiling) return;
    with_statement(upsert_data, [&](statement& q) {
      q.bind(1, plugin).bind(2, key).bind(3, current + delta);
      q.run();
    });
    result = current + delta;
  });
  return result;
}

void campaign_store::data_erase(std::string_view plugin, std::string_view key) {
  locked_write([&] {
    statement q(*db_, "DELETE FROM plugin_data WHERE plugin = ?1 AND key = ?2");
    q.bind(1, plugin).bind(2, key);
    q.run();
  });
}

}  // namespace postern::campaign
