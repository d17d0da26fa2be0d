#include "store/state_store.hpp"

#include "spool/sqlite.hpp"
#include "tenants/directory.hpp"

namespace postern::store {
namespace {

using spool::in_transaction;
using spool::statement;
using spool::to_ms;

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS templates(
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  subject TEXT NOT NULL,
  text TEXT NOT NULL,
  html TEXT NOT NULL,
  updated INTEGER NOT NULL,
  PRIMARY KEY(tenant, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS webhooks(
  tenant TEXT NOT NULL,
  event_type TEXT NOT NULL,
  url TEXT NOT NULL,
  PRIMARY KEY(tenant, event_type)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS signing_keys(
  tenant TEXT PRIMARY KEY,
  key TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS webhook_deliveries(
  id INTEGER PRIMARY KEY,
  tenant TEXT NOT NULL,
  event_type TEXT NOT NULL,
  url TEXT NOT NULL,
  payload TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt INTEGER NOT NULL,
  state INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries(next_attempt) WHERE state = 0;
-- Keys of deliveries queued at most once (a campaign's end), kept after they are delivered.
CREATE TABLE IF NOT EXISTS webhook_once(
  key TEXT PRIMARY KEY,
  queued INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursors(
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL) WITHOUT ROWID;
)sql";


std::int64_t now_ms() { return to_ms(std::chrono::system_clock::now()); }


}  // namespace

state_store::state_store(const std::filesystem::path& file) {
  std::filesystem::create_directories(file.parent_path());
  db_ = std::make_unique<spool::database>(file, false);
  db_->exec("PRAGMA journal_mode=WAL");
  db_->exec("PRAGMA synchronous=FULL");
  db_->exec(schema);
}

state_store::~state_store() = default;

std::optional<templates::message_template> state_store::get_template(std::string_view tenant, std::string_view name) {
  std::lock_guard lock(mutex_);
  statement q(*db_, "SELECT subject, text, html FROM templates WHERE tenant = ?1 AND name = ?2");
  q.bind(1, tenant).bind(2, name);
  if (!q.step()) return std::nullopt;
  return templates::message_template{std::string(name), q.column_text(0), q.column_text(1), q.column_text(2), false};
}

std::vector<templates::message_template> state_store::list_templates(std::string_view tenant) {
  std::lock_guard lock(mutex_);
  statement q(*db_, "SELECT name, subject, text, html FROM templates WHERE tenant = ?1 ORDER BY name");
  q.bind(1, tenant);
  std::vector<templates::message_template> out;
  while (q.step()) out.push_back({q.column_text(0), q.column_text(1), q.column_text(2), q.column_text(3), false});
  return out;
}

void state_store::put_template(std::string_view tenant, const templates::message_template& t) {
  std::lock_guard lock(mutex_);
  statement q(*db_,
              "INSERT INTO templates(tenant, name, subject, text, html, updated) VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
              "ON CONFLICT(tenant, name) DO UPDATE SET subject = ?3, text = ?4, html = ?5, updated = ?6");
  q.bind(1, tenant).bind(2, t.name).bind(3, t.subject).bind(4, t.text).bind(5, t.html).bind(6, now_ms());
  q.run();
}

bool state_store::delete_template(std::string_view tenant, std::string_view name) {
  std::lock_guard lock(mutex_);
  statement q(*db_, "DELETE FROM templates WHERE tenant = ?1 AND name = ?2");
  q.bind(1, tenant).bind(2, name);
  q.run();
  return q.changes() > 0;
}

std::map<std::string, std::string> state_store::webhooks(std::string_view tenant) {
  std::lock_guard lock(mutex_);
  statement q(*db_, "SELECT event_type, url FROM webhooks WHERE tenant = ?1");
  q.bind(1, tenant);
  std::map<std::string, std::string> out;
  while (q.step()) out[q.column_text(0)] = q.column_text(1);
  return out;
}

std::string state_store::set_webhooks(std::string_view tenant, const std::map<std::string, std::string>& urls) {
  {
    std::lock_guard lock(mutex_);
    in_transaction(*db_, [&] {
      statement clear(*db_, "DELETE FROM webhooks WHERE tenant = ?1");
      clear.bind(1, tenant);
      clear.run();
      statement add(*db_, "INSERT INTO webhooks(tenant, event_type, url) VALUES(?1, ?2, ?3)");
      for (const auto& [type, url] : urls) {
        add.reset();
        add.bind(1, tenant).bind(2, type).bind(3, url);
        add.run();
      }
    });
  }
  return signing_key(tenant);
}

std::string state_store::signing_key(std::string_view tenant) {
  std::lock_guard lock(mutex_);
  {
    statement q(*db_, "SELECT key FROM signing_keys WHERE tenant = ?1");
    q.bind(1, tenant);
    if (q.step()) return q.column_text(0);
  }
  const auto key = tenants::random_hex(32);
  statement add(*db_, "INSERT INTO signing_keys(tenant, key) VALUES(?1, ?2)");
  add.bind(1, tenant).bind(2, key);
  add.run();
  return key;
}

std::int64_t state_store::webhook_cursor() {
  std::lock_guard lock(mutex_);
  statement q(*db_, "SELECT value FROM cursors WHERE name = 'webhooks'");
  return q.step() ? q.column_int(0) : 0;
}

void state_store::add_webhook_deliveries(const std::vector<webhook_delivery>& deliveries, std::int64_t cursor,
                                         std::chrono::system_clock::time_point first_attempt) {
  std::lock_guard lock(mutex_);
  in_transaction(*db_, [&] {
    statement add(*db_,
                  "INSERT INTO webhook_deliveries(tenant, event_type, url, payload, next_attempt) "
                  "VALUES(?1, ?2, ?3, ?4, ?5)");
    const auto due = to_ms(first_attempt);
    for (const auto& d : deliveries) {
      add.reset();
      add.bind(1, d.tenant).bind(2, d.event_type).bind(3, d.url).bind(4, d.payload).bind(5, due);
      add.run();
    }
    statement move(*db_, "INSERT INTO cursors(name, value) VALUES('webhooks', ?1) "
                         "ON CONFLICT(name) DO UPDATE SET value = ?1");
    move.bind(1, cursor);
    move.run();
  });
}

bool state_store::add_webhook_delivery(const webhook_delivery& d, std::string_view once_key,
                                       std::chrono::system_clock::time_point first_attempt) {
  std::lock_guard lock(mutex_);
  bool queued = false;
  in_transaction(*db_, [&] {
    statement once(*db_, "INSERT OR IGNORE INTO webhook_once(key, queued) VALUES(?1, ?2)");
    once.bind(1, once_key).bind(2, now_ms());
    once.run();
    if (once.changes() == 0) return;
    statement add(*db_,
                  "INSERT INTO webhook_deliveries(tenant, event_type, url, payload, next_attempt) VALUES(?1, ?2, ?3, ?4, ?5)");
    add.bind(1, d.tenant).bind(2, d.event_type).bind(3, d.url).bind(4, d.payload).bind(5, to_ms(first_attempt));
    add.run();
    queued = true;
  });
  return queued;
}

std::vector<webhook_delivery> state_store::due_webhooks(std::chrono::system_clock::time_point now, std::size_t limit) {
  std::lock_guard lock(mutex_);
  statement q(*db_,
              "SELECT id, tenant, event_type, url, payload, attempts FROM webhook_deliveries "
              "WHERE state = 0 AND next_attempt <= ?1 ORDER BY next_attempt, id LIMIT ?2");
  q.bind(1, to_ms(now)).bind(2, static_cast<std::int64_t>(limit));
  std::vector<webhook_delivery> out;
  while (q.step()) {
    out.push_back({q.column_int(0), q.column_text(1), q.column_text(2), q.column_text(3), q.column_text(4),
                   static_cast<std::uint32_t>(q.column_int(5))});
  }
  return out;
}

void state_store::webhook_done(std::int64_t id) {
  // A finished delivery is not kept: its outcome is in the spool's event log ("webhook").
  std::lock_guard lock(mutex_);
  statement q(*db_, "DELETE FROM webhook_deliveries WHERE id = ?1");
  q.bind(1, id);
  q.run();
}

void state_store::webhook_failed(std::int64_t id, std::optional<std::chrono::system_clock::time_point> next) {
  if (!next) return webhook_done(id);  // given up: recorded in the event log, like a success
  std::lock_guard lock(mutex_);
  statement q(*db_, "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt = ?2 WHERE id = ?1");
  q.bind(1, id).bind(2, to_ms(*next));
  q.run();
}

}  // namespace postern::store
