// Schema migrations on a real SQLite file: a database a sweepd of schema version 3 wrote (jobs,
// their dependencies, sweeps) migrates to the newest schema with every row kept and its foreign
// keys intact, and migration 4 lets jobs.kind be 'merge' while the CHECK still refuses others.
#include "store/migrations.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "store/database.h"
#include "tests/support/process.h"

namespace sweepd::store {
namespace {

int64_t Count(Database& db, const std::string& sql) {
  Query q = db.Prepare(sql.c_str());
  return q.Step() ? q.Int(0) : -1;
}

TEST(Migrations, VersionThreeDatabaseKeepsEveryRowAndAcceptsMergeJobs) {
  const std::string dir = sweepd::testing::MakeTempDir("sweepd-migrate-");
  auto db = Database::Open(dir + "/sweepd.db");
  ASSERT_TRUE(db.ok()) << db.status().message();
  std::vector<Migration> up_to_three;
  for (const Migration& m : EmbeddedMigrations()) {
    if (m.version <= 3) up_to_three.push_back(m);
  }
  ASSERT_EQ(up_to_three.size(), 3u);
  ASSERT_TRUE(ApplyMigrations(**db, up_to_three, 1).ok());
  ASSERT_TRUE((*db)->ExecScript(
                      "INSERT INTO sweeps (name, spec_yaml, submitted_ms) VALUES ('s', 'name: s', 1);"
                      "INSERT INTO jobs (job_id, kind, config_json, method, track, seed, state, attempts_base, "
                      "  created_ms, updated_ms) VALUES ('j-base', 'base_eval', '{}', 'base', 'base', 0, 'succeeded', 0, 1, 2),"
                      "  ('j-train', 'train', '{}', 'lora', 'A', 1, 'blocked', 2, 1, 2);"
                      "INSERT INTO job_deps (job_id, depends_on) VALUES ('j-train', 'j-base');"
                      "INSERT INTO sweep_jobs (sweep, job_id, ordinal) VALUES ('s', 'j-base', 0), ('s', 'j-train', 1);")
                  .ok());
  EXPECT_FALSE((*db)->ExecScript("INSERT INTO jobs (job_id, kind, config_json, method, track, seed, state, created_ms, "
                                 "updated_ms) VALUES ('j-m', 'merge', '{}', 'lora', 'A', 0, 'queued', 1, 1)")
                   .ok());  // version 3 refuses the kind

  ASSERT_TRUE(ApplyMigrations(**db, EmbeddedMigrations(), 3).ok());
  auto version = SchemaVersion(**db);
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, NewestSchemaVersion());
  EXPECT_EQ(Count(**db, "SELECT COUNT(*) FROM jobs"), 2);
  EXPECT_EQ(Count(**db, "SELECT attempts_base FROM jobs WHERE job_id = 'j-train'"), 2);
  EXPECT_EQ(Count(**db, "SELECT COUNT(*) FROM job_deps"), 1);
  EXPECT_EQ(Count(**db, "SELECT COUNT(*) FROM sweep_jobs"), 2);
  EXPECT_EQ(Count(**db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'jobs_by_state'"), 1);
  ASSERT_TRUE((*db)->ExecScript("INSERT INTO jobs (job_id, kind, config_json, method, track, seed, state, created_ms, "
                                "updated_ms) VALUES ('j-m', 'merge', '{}', 'lora', 'A', 0, 'blocked', 1, 1);"
                                "INSERT INTO job_deps (job_id, depends_on) VALUES ('j-m', 'j-train');")
                  .ok());
  EXPECT_FALSE((*db)->ExecScript("INSERT INTO jobs (job_id, kind, config_json, method, track, seed, state, created_ms, "
                                 "updated_ms) VALUES ('j-x', 'distill', '{}', '', '', 0, 'queued', 1, 1)")
                   .ok());
  // Foreign keys are on again: a dependency on a job that does not exist is refused.
  EXPECT_FALSE((*db)->ExecScript("INSERT INTO job_deps (job_id, depends_on) VALUES ('j-m', 'j-nobody')").ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sweepd::store
