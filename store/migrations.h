// Schema migrations: the numbered files of schema/, embedded at build time and applied
// in order at start, each in its own transaction, recorded in schema_version.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/database.h"

namespace sweepd::store {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

// Every migration of schema/, in version order (generated: schema_migrations.cc).
const std::vector<Migration>& EmbeddedMigrations();

// The newest version EmbeddedMigrations() holds: the schema this binary reads and writes.
int64_t NewestSchemaVersion();

// The database's schema version (0 for a database no migration has touched yet).
Result<int64_t> SchemaVersion(Database& db);

// Applies the migrations newer than the database's version. A database from a newer
// sweepd (a version this binary does not know) is refused rather than misread.
Status ApplyMigrations(Database& db, const std::vector<Migration>& migrations, int64_t now_ms);

}  // namespace sweepd::store
