// The read-only store reader on real SQLite files: it sees what the store committed, writes
// nothing (no -wal or -shm next to a closed database), and refuses a file it cannot read
// right -- a newer schema by name, a file that is not SQLite, a SQLite file that is not sweepd's.
#include "store/store_reader.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "spec/sweep_spec.h"
#include "store/migrations.h"
#include "store/store.h"
#include "tests/support/process.h"

namespace sweepd::store {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

spec::ExpandedSweep ServerSpec(const std::string& name) {
  spec::SpecResult r =
      spec::ParseSweepSpecFile(std::string(SWEEPD_SOURCE_DIR) + "/tests/server/specs/" + name);
  EXPECT_TRUE(r.ok()) << (r.problems.empty() ? "" : spec::FormatProblem(r.problems[0]));
  return r.sweep;
}

class StoreReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = sweepd::testing::MakeTempDir("sweepd-reader-");
    path_ = dir_ + "/sweepd.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // A database the real store wrote, with one sweep; the store is closed again.
  void WriteDatabase() {
    auto store = Store::Open(path_, kT0);
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE((*store)->AddSweep(ServerSpec("two-jobs.yaml"), kT0).ok());
  }

  std::string dir_, path_;
};

TEST_F(StoreReaderTest, ReadsWhatTheStoreCommitted) {
  auto store = Store::Open(path_, kT0);
  ASSERT_TRUE(store.ok()) << store.status().message();
  ASSERT_TRUE((*store)->AddSweep(ServerSpec("two-jobs.yaml"), kT0).ok());
  // sweepd is running (its -wal is there): the reader follows its commits.
  auto reader = StoreReader::Open(path_, "sweepctl");
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  auto sweeps = (*reader)->ListSweeps();
  ASSERT_TRUE(sweeps.ok()) << sweeps.status().message();
  ASSERT_EQ(sweeps->size(), 1u);
  const std::string name = (*sweeps)[0].name;
  auto jobs = (*reader)->SweepJobs(name);
  ASSERT_TRUE(jobs.ok());
  auto from_store = (*store)->SweepJobs(name);
  ASSERT_TRUE(from_store.ok());
  ASSERT_EQ(jobs->size(), from_store->size());
  for (size_t i = 0; i < jobs->size(); ++i) EXPECT_EQ((*jobs)[i].job_id, (*from_store)[i].job_id);

  ASSERT_TRUE((*store)->CancelSweep(name, kT0 + 1).ok());
  auto after = (*reader)->GetSweep(name);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->cancelled);
  EXPECT_EQ(after->counts[JobState::kCancelled], after->total_jobs);
}

TEST_F(StoreReaderTest, ReadingAClosedDatabaseWritesNothing) {
  WriteDatabase();
  ASSERT_FALSE(std::filesystem::exists(path_ + "-wal"));
  const std::string before = sweepd::testing::ReadFile(path_);
  {
    auto reader = StoreReader::Open(path_, "sweepctl");
    ASSERT_TRUE(reader.ok()) << reader.status().message();
    auto sweeps = (*reader)->ListSweeps();
    ASSERT_TRUE(sweeps.ok()) << sweeps.status().message();
    EXPECT_EQ(sweeps->size(), 1u);
    EXPECT_FALSE(std::filesystem::exists(path_ + "-wal"));
    EXPECT_FALSE(std::filesystem::exists(path_ + "-shm"));
  }
  EXPECT_EQ(sweepd::testing::ReadFile(path_), before);
}

TEST_F(StoreReaderTest, NewerSchemaIsRefusedNamingThePathAndBothVersions) {
  WriteDatabase();
  const int64_t newest = NewestSchemaVersion();
  {
    auto db = Database::Open(path_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Prepare("INSERT INTO schema_version (version, name, applied_ms) "
                               "VALUES (?, 'from_a_newer_sweepd', 0)")
                    .Bind(1, newest + 1)
                    .Run()
                    .ok());
  }
  auto reader = StoreReader::Open(path_, "sweepctl");
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(reader.status().message(), path_ + " has schema version " +
                                           std::to_string(newest + 1) +
                                           "; this sweepctl reads up to " + std::to_string(newest));
}

TEST_F(StoreReaderTest, FilesThatAreNotSweepdDatabasesAreRefused) {
  std::ofstream(path_) << "not a database\n";
  auto text = StoreReader::Open(path_, "sweepctl");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(text.status().message().find(path_ + " is not a SQLite database"), std::string::npos)
      << text.status().message();

  const std::string other = dir_ + "/other.db";
  {
    auto db = Database::Open(other);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->ExecScript("CREATE TABLE notes (text TEXT);").ok());
  }
  auto foreign = StoreReader::Open(other, "sweepctl");
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(foreign.status().message().find("not a sweepd database"), std::string::npos)
      << foreign.status().message();

  auto missing = StoreReader::Open(dir_ + "/none.db", "sweepctl");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace sweepd::store
