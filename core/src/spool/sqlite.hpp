#pragma once
// Thin RAII over the SQLite C API: a connection, prepared statements, errors as exceptions.
// Kept here rather than pulling in a wrapper library: the spool uses a dozen statements and
// wants exact control of transactions and pragmas.

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace postern::spool {

/// An SQLite error with the library's result code, e.g. SQLITE_FULL for a full disk.
class sqlite_error : public std::runtime_error {
 public:
  sqlite_error(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

class statement;

/// One connection. Not thread-safe: one thread at a time.
class database {
 public:
  database(const std::filesystem::path& file, bool read_only);
  ~database();
  database(const database&) = delete;
  database& operator=(const database&) = delete;

  void exec(const char* sql);
  sqlite3* handle() const noexcept { return db_; }
  [[noreturn]] void fail(int code, std::string_view context) const;

 private:
  sqlite3* db_ = nullptr;
};

/// A prepared statement, reset after each use.
class statement {
 public:
  statement(database& db, const char* sql);
  ~statement();
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  statement& bind(int index, std::int64_t value);
  statement& bind(int index, std::string_view text);
  statement& bind_blob(int index, std::string_view bytes);
  statement& bind_null(int index);
  /// Binds text, or NULL when empty.
  statement& bind_or_null(int index, std::string_view text);

  /// Steps once; true while a row is available.
  bool step();
  /// Steps to completion (for statements without result rows).
  void run();
  /// Resets bindings and cursor for the next use.
  void reset();

  std::int64_t column_int(int index) const;
  std::string column_text(int index) const;
  std::string column_blob(int index) const;
  bool column_is_null(int index) const;
  int changes() const;

 private:
  database& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

/// Runs `body` in one write transaction (BEGIN IMMEDIATE), rolled back when it throws.
/// After some errors (a full disk, an I/O error) SQLite has already rolled back: then there
/// is nothing to roll back, and the error to report is the one in flight.
template <class Body>
void in_transaction(database& db, Body body) {
  db.exec("BEGIN IMMEDIATE");
  try {
    body();
    db.exec("COMMIT");
  } catch (...) {
    if (!sqlite3_get_autocommit(db.handle())) db.exec("ROLLBACK");
    throw;
  }
}

/// Adds `column` (with its SQL type) to `table` unless it is there: how a database of an
/// earlier version gains a column. In one transaction, so that two processes opening the
/// same database at once do not both add it.
void add_column_if_missing(database& db, std::string_view table, std::string_view column, std::string_view type);

/// Times are stored as milliseconds since the Unix epoch.
inline std::int64_t to_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
inline std::chrono::system_clock::time_point from_ms(std::int64_t ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

}  // namespace postern::spool
