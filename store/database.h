// Database: one SQLite connection with sweepd's settings (WAL, foreign keys, busy
// timeout) and a cache of prepared statements. Not thread-safe: the store gives each
// thread its own connection (docs/coordinator.md); SQL is never built from strings.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sweepd::store {

class Database;

// A prepared statement in use: bind, step, read columns; reset when it goes out of scope
// so the cached statement can be used again.
class Query {
 public:
  Query(Database& db, sqlite3_stmt* stmt);
  ~Query();
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  // Binds are 1-based, as in SQLite.
  Query& Bind(int index, int64_t value);
  Query& Bind(int index, const std::string& value);
  Query& Bind(int index, double value);
  Query& BindNull(int index);

  // True when a row is available; false when done. Errors are kept in status().
  bool Step();
  // Runs a statement that returns no rows.
  Status Run();
  const Status& status() const { return status_; }

  int64_t Int(int column) const;
  double Double(int column) const;
  std::string Text(int column) const;
  bool IsNull(int column) const;

 private:
  Database& db_;
  sqlite3_stmt* stmt_;
  Status status_;
};

class Database {
 public:
  // Opens (creating if needed) the database file at `path`.
  static Result<std::unique_ptr<Database>> Open(const std::string& path);
  // Opens an existing file read-only (SQLite's mode=ro), so reading never writes it. Unless
  // `follow_writers`, a file with no -wal next to it (sweepd stopped, or a copied file) opens
  // immutable, which creates no -wal or -shm file; SQLite needs both to follow a writer's
  // commits, so a reader that waits for them (watch) may create them. Unavailable when the
  // file is not a SQLite database.
  static Result<std::unique_ptr<Database>> OpenReadOnly(const std::string& path,
                                                        bool follow_writers = false);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // A cached prepared statement for `sql` (a string literal of the caller's).
  Query Prepare(const char* sql);
  // Runs fixed SQL text with several statements (migrations only).
  Status ExecScript(const std::string& sql);
  int64_t Changes() const;
  std::string ErrorMessage() const;
  // Calls `hook(table, rowid)` for every row this connection inserts, updates or deletes in a
  // rowid table (SQLite's update hook; not for WITHOUT ROWID tables). The hook must not use
  // the connection. An empty function removes it.
  using RowChangeHook = std::function<void(const char* table, int64_t rowid)>;
  void SetRowChangeHook(RowChangeHook hook);

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  static void OnRowChange(void* self, int op, const char* database, const char* table,
                          int64_t rowid);

  sqlite3* db_;
  RowChangeHook row_change_hook_;
  std::map<const char*, sqlite3_stmt*> statements_;
  Status prepare_error_;
};

// BEGIN IMMEDIATE on construction (so writers never deadlock upgrading a read lock);
// ROLLBACK unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  const Status& status() const { return status_; }  // whether BEGIN worked
  Status Commit();

 private:
  Database& db_;
  Status status_;
  bool done_ = false;
};

}  // namespace sweepd::store
