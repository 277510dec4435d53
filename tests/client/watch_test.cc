// sweepctl watch into a file (not a terminal): plain progress lines, no escape codes, and
// it ends when the sweep ends — driven here by changing job states in the database file
// as sweepd would, while watch reads it offline.
#include <sys/wait.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "tests/client/fixture_db.h"
#include "tests/support/process.h"

namespace sweepd::client {
namespace {

using sweepd::testing::ChildProcess;
using sweepd::testing::MakeTempDir;
using sweepd::testing::ReadFile;
using sweepd::testing::WaitUntil;
using namespace std::chrono_literals;

const std::string kSweepctl = std::string(SWEEPD_BIN_DIR) + "/sweepctl";
const std::string kFixture = std::string(SWEEPD_SOURCE_DIR) + "/tests/client/fixtures/golden_results.json";

TEST(Watch, PipedWritesPlainLinesAndEndsWhenTheSweepEnds) {
  const std::string dir = MakeTempDir("sweepctl-watch-");
  const std::string db = dir + "/sweepd.db";
  testing::BuildFixtureDb(db, kFixture);
  // One job still running, the failed one queued again.
  testing::ExecSql(db, "UPDATE jobs SET state = 'running' WHERE job_id = 'j-jora-s2'");
  testing::ExecSql(db, "UPDATE attempts SET state = 'running' WHERE job_id = 'j-jora-s2'");
  testing::ExecSql(db, "UPDATE jobs SET state = 'queued' WHERE job_id = 'j-lora16-s0'");

  const std::string log = dir + "/watch.out";
  ChildProcess watch({kSweepctl, "--db", db, "watch", "golden"}, log);
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(log).find("running 1") != std::string::npos; }, 30s))
      << ReadFile(log);
  EXPECT_TRUE(watch.running()) << "watch must wait while jobs are unfinished\n" << ReadFile(log);

  testing::ExecSql(db, "UPDATE jobs SET state = 'succeeded' WHERE job_id = 'j-jora-s2'");
  testing::ExecSql(db, "UPDATE attempts SET state = 'finished' WHERE job_id = 'j-jora-s2'");
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(log).find("10/11 done") != std::string::npos; }, 30s))
      << ReadFile(log);
  testing::ExecSql(db, "UPDATE jobs SET state = 'succeeded' WHERE job_id = 'j-lora16-s0'");

  const int status = watch.Wait(30s);
  ASSERT_NE(status, -1) << "watch did not end with the sweep\n" << ReadFile(log);
  EXPECT_EQ(WEXITSTATUS(status), 0) << ReadFile(log);
  const std::string out = ReadFile(log);
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << "no terminal escapes in a file:\n" << out;
  EXPECT_NE(out.find("golden 9/11 done"), std::string::npos) << out;
  EXPECT_NE(out.find("golden 11/11 done (100%)"), std::string::npos) << out;
  EXPECT_NE(out.find("sweep golden ended: 11 succeeded, 0 failed"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

TEST(Watch, EndedSweepWithFailuresExitsSix) {
  const std::string dir = MakeTempDir("sweepctl-watch-");
  const std::string db = dir + "/sweepd.db";
  testing::BuildFixtureDb(db, kFixture);
  std::string out;
  EXPECT_EQ(sweepd::testing::RunCommand({kSweepctl, "--db", db, "watch", "golden"}, &out), 6) << out;
  EXPECT_NE(out.find("1 failed"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sweepd::client
