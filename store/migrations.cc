// Applying schema migrations; see schema/ for the files.
#include "store/migrations.h"

#include <algorithm>

namespace sweepd::store {

int64_t NewestSchemaVersion() {
  int64_t newest = 0;
  for (const Migration& m : EmbeddedMigrations()) newest = std::max<int64_t>(newest, m.version);
  return newest;
}

Result<int64_t> SchemaVersion(Database& db) {
  Query q = db.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version");
  int64_t version = 0;
  if (q.Step()) version = q.Int(0);
  SWEEPD_RETURN_IF_ERROR(q.status());
  return version;
}

Status ApplyMigrations(Database& db, const std::vector<Migration>& migrations, int64_t now_ms) {
  SWEEPD_RETURN_IF_ERROR(db.ExecScript(
      "CREATE TABLE IF NOT EXISTS schema_version ("
      "  version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)"));
  Result<int64_t> version = SchemaVersion(db);
  if (!version.ok()) return version.status();
  const int64_t current = *version;
  int64_t newest = 0;
  for (const Migration& m : migrations) newest = std::max<int64_t>(newest, m.version);
  if (current > newest) {
    return Status::FailedPrecondition("the database has schema version " + std::to_string(current) +
                                      " but this sweepd knows only up to " + std::to_string(newest) +
                                      "; run a newer sweepd on it");
  }
  // Foreign keys off while a migration runs (a table rebuild drops and renames a parent table,
  // SQLite's documented procedure) and checked before it commits; the pragma only takes effect
  // outside a transaction.
  SWEEPD_RETURN_IF_ERROR(db.ExecScript("PRAGMA foreign_keys = OFF"));
  Status status = Status::Ok();
  for (const Migration& m : migrations) {
    if (m.version <= current) continue;
    Transaction txn(db);
    status = txn.status();
    if (!status.ok()) break;
    if (Status applied = db.ExecScript(m.sql); !applied.ok()) {
      status = Status::Internal("migration " + m.name + " failed: " + applied.message());
      break;
    }
    {
      Query check = db.Prepare("PRAGMA foreign_key_check");
      if (check.Step()) {
        status = Status::Internal("migration " + m.name + " left a row of table " + check.Text(0) +
                                  " whose foreign key has no parent; nothing was changed");
      } else {
        status = check.status();
      }
    }
    if (!status.ok()) break;
    status = db.Prepare("INSERT INTO schema_version (version, name, applied_ms) VALUES (?, ?, ?)")
                 .Bind(1, static_cast<int64_t>(m.version))
                 .Bind(2, m.name)
                 .Bind(3, now_ms)
                 .Run();
    if (!status.ok()) break;
    if (status = txn.Commit(); !status.ok()) break;
  }
  if (Status on = db.ExecScript("PRAGMA foreign_keys = ON"); status.ok()) status = on;
  return status;
}

}  // namespace sweepd::store
