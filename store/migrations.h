// Schema migrations: the numbered files of schema/, embedded at build time and applied
// in order at start, each in its own transaction, recorded in schema_version.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "server/database.h"

namespace sweepd::server {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

// Every migration of schema/, in version order (generated: schema_migrations.cc).
const std::vector<Migration>& EmbeddedMigrations();

// Applies the migrations newer than the database's version. A database from a newer
// sweepd (a version this binary does not know) is refused rather than misread.
Status ApplyMigrations(Database& db, const std::vector<Migration>& migrations, int64_t now_ms);

}  // namespace sweepd::server
