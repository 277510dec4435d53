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
  for (const Migration& m : migrations) {
    if (m.version <= current) continue;
    Transaction txn(db);
    SWEEPD_RETURN_IF_ERROR(txn.status());
    Status applied = db.ExecScript(m.sql);
    if (!applied.ok()) {
      return Status::Internal("migration " + m.name + " failed: " + applied.message());
    }
    SWEEPD_RETURN_IF_ERROR(db.Prepare("INSERT INTO schema_version (version, name, applied_ms) VALUES (?, ?, ?)")
                               .Bind(1, static_cast<int64_t>(m.version))
                               .Bind(2, m.name)
                               .Bind(3, now_ms)
                               .Run());
    SWEEPD_RETURN_IF_ERROR(txn.Commit());
  }
  return Status::Ok();
}

}  // namespace sweepd::store
