// The audit table on real SQLite files: rows appended through the store's writer read back in
// order and by time, and a database from before the trail (schema version 2) stays readable
// by sweepctl's reader and is upgraded, its sweeps kept, when the store opens it.
#include "store/audit.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "spec/sweep_spec.h"
#include "store/migrations.h"
#include "store/store.h"
#include "store/store_reader.h"
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

AuditEntry Entry(int64_t time_ms, const std::string& caller, std::string_view action, const std::string& target) {
  AuditEntry e;
  e.time_ms = time_ms;
  e.caller = caller;
  e.role = "submitter";
  e.action = std::string(action);
  e.target = target;
  e.outcome = std::string(kAuditOk);
  return e;
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = sweepd::testing::MakeTempDir("sweepd-audit-") + "/sweepd.db"; }
  void TearDown() override { std::filesystem::remove_all(std::filesystem::path(path_).parent_path()); }
  std::string path_;
};

TEST_F(AuditTest, RowsReadBackInOrderFromTheirTimeOn) {
  auto store = Store::Open(path_, kT0);
  ASSERT_TRUE(store.ok()) << store.status().message();
  ASSERT_TRUE((*store)->RecordAudit(Entry(kT0, "bob", audit_action::kSubmit, "demo")).ok());
  ASSERT_TRUE((*store)->RecordAudit(Entry(kT0 + 1000, "bob", audit_action::kCancel, "demo")).ok());
  ASSERT_TRUE((*store)->RecordAudit(Entry(kT0 + 2000, "ann", audit_action::kRetry, "demo")).ok());
  auto all = (*store)->ListAudit(0);
  ASSERT_TRUE(all.ok()) << all.status().message();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].action, audit_action::kSubmit);
  EXPECT_EQ((*all)[2].caller, "ann");
  EXPECT_LT((*all)[0].seq, (*all)[1].seq);
  auto later = (*store)->ListAudit(kT0 + 1000);
  ASSERT_TRUE(later.ok());
  ASSERT_EQ(later->size(), 2u);
  EXPECT_EQ((*later)[0].action, audit_action::kCancel);
  // A caller's long field is bounded, never stored whole.
  ASSERT_TRUE((*store)->RecordAudit(Entry(kT0 + 3000, "bob", audit_action::kSubmit, std::string(100000, 'x'))).ok());
  auto last = (*store)->ListAudit(kT0 + 3000);
  ASSERT_TRUE(last.ok());
  ASSERT_EQ(last->size(), 1u);
  EXPECT_LT((*last)[0].target.size(), 1000u);
  // sweepctl --db reads the same rows from the file.
  store->reset();
  auto reader = StoreReader::Open(path_, "sweepctl");
  ASSERT_TRUE(reader.ok()) << reader.status().message();
  auto from_file = (*reader)->Audit(0);
  ASSERT_TRUE(from_file.ok()) << from_file.status().message();
  EXPECT_EQ(from_file->size(), 4u);
}

TEST_F(AuditTest, DatabaseFromBeforeTheTrailIsReadAndThenUpgraded) {
  std::string sweep;
  {
    auto store = Store::Open(path_, kT0);
    ASSERT_TRUE(store.ok()) << store.status().message();
    const spec::ExpandedSweep spec = ServerSpec("two-jobs.yaml");
    sweep = spec.name;
    ASSERT_TRUE((*store)->AddSweep(spec, kT0).ok());
  }
  {
    // Back to what a sweepd of schema version 2 wrote: the trail's migration undone.
    auto db = Database::Open(path_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->ExecScript("DROP TABLE audit; DELETE FROM schema_version WHERE version >= 3;").ok());
    auto version = SchemaVersion(**db);
    ASSERT_TRUE(version.ok());
    ASSERT_LT(*version, kAuditSchemaVersion);
  }
  {
    auto reader = StoreReader::Open(path_, "sweepctl");
    ASSERT_TRUE(reader.ok()) << reader.status().message();
    auto sweeps = (*reader)->ListSweeps();
    ASSERT_TRUE(sweeps.ok()) << sweeps.status().message();
    EXPECT_EQ(sweeps->size(), 1u);
    auto audit = (*reader)->Audit(0);
    ASSERT_FALSE(audit.ok());
    EXPECT_EQ(audit.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(audit.status().message().find("schema version"), std::string::npos) << audit.status().message();
  }
  auto store = Store::Open(path_, kT0 + 1);
  ASSERT_TRUE(store.ok()) << store.status().message();
  auto sweeps = (*store)->ListSweeps();
  ASSERT_TRUE(sweeps.ok());
  ASSERT_EQ(sweeps->size(), 1u);
  EXPECT_EQ((*sweeps)[0].name, sweep);
  ASSERT_TRUE((*store)->RecordAudit(Entry(kT0 + 1, "bob", audit_action::kCancel, sweep)).ok());
  auto audit = (*store)->ListAudit(0);
  ASSERT_TRUE(audit.ok()) << audit.status().message();
  EXPECT_EQ(audit->size(), 1u);
}

}  // namespace
}  // namespace sweepd::store
