#include "spool/sqlite.hpp"

namespace postern::spool {

database::database(const std::filesystem::path& file, bool read_only) {
  const int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  const int rc = sqlite3_open_v2(file.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw sqlite_error(rc, "cannot open " + file.string() + ": " + message);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, 10000);
}

database::~database() { sqlite3_close_v2(db_); }

void database::exec(const char* sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    throw sqlite_error(rc, message + " (in: " + std::string(sql).substr(0, 60) + ")");
  }
}

void database::fail(int code, std::string_view context) const {
  throw sqlite_error(code, std::string(context) + ": " + sqlite3_errmsg(db_));
}

statement::statement(database& db, const char* sql) : db_(db) {
  const int rc = sqlite3_prepare_v3(db.handle(), sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  if (rc != SQLITE_OK) db.fail(rc, std::string("prepare ") + sql);
}

statement::~statement() { sqlite3_finalize(stmt_); }

statement& statement::bind(int index, std::int64_t value) {
  if (int rc = sqlite3_bind_int64(stmt_, index, value); rc != SQLITE_OK) db_.fail(rc, "bind");
  return *this;
}

statement& statement::bind(int index, std::string_view text) {
  if (int rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      rc != SQLITE_OK)
    db_.fail(rc, "bind");
  return *this;
}

statement& statement::bind_blob(int index, std::string_view bytes) {
  // SQLITE_STATIC: the caller's buffer outlives the step (it is bound and run in one call chain).
  if (int rc = sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_STATIC); rc != SQLITE_OK)
    db_.fail(rc, "bind");
  return *this;
}

statement& statement::bind_null(int index) {
  if (int rc = sqlite3_bind_null(stmt_, index); rc != SQLITE_OK) db_.fail(rc, "bind");
  return *this;
}

statement& statement::bind_or_null(int index, std::string_view text) {
  return text.empty() ? bind_null(index) : bind(index, text);
}

bool statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_.fail(rc, "step");
}

void statement::run() {
  while (step()) {
  }
  reset();
}

void statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t statement::column_int(int index) const { return sqlite3_column_int64(stmt_, index); }

std::string statement::column_text(int index) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index));
  return text ? std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, index))) : std::string();
}

std::string statement::column_blob(int index) const {
  const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt_, index));
  return data ? std::string(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, index))) : std::string();
}

bool statement::column_is_null(int index) const { return sqlite3_column_type(stmt_, index) == SQLITE_NULL; }

int statement::changes() const { return sqlite3_changes(db_.handle()); }

void add_column_if_missing(database& db, std::string_view table, std::string_view column, std::string_view type) {
  in_transaction(db, [&] {
    bool present = false;
    {  // finished before the ALTER, which a statement still open would block
      statement columns(db, ("SELECT name FROM pragma_table_info('" + std::string(table) + "')").c_str());
      while (columns.step()) present = present || columns.column_text(0) == column;
    }
    if (!present)
      db.exec(("ALTER TABLE " + std::string(table) + " ADD COLUMN " + std::string(column) + " " + std::string(type)).c_str());
  });
}

}  // namespace postern::spool
