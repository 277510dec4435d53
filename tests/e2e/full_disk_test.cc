// A full disk during a checkpoint, end to end: the real sweepd, sweep-worker and sweep-train on
// loopback, the worker's --artifacts (where the trainer's checkpoints go) on a small tmpfs that
// the test mounts and fills. The trainer's checkpoint write fails with ENOSPC: the attempt must
// end as `crashed` (exit_status::kCrashed, "crash (I/O error)" in its stderr tail), not as
// `invalid_config`; sweepd must retry the job after its back-off, and once the test has freed
// the space the retry must succeed.
#include <sys/mount.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/contracts.h"
#include "tests/support/process.h"
#include "tests/support/sqlite_rows.h"

namespace sweepd {
namespace {

namespace fs = std::filesystem;
using sweepd::testing::ChildProcess;
using sweepd::testing::MakeTempDir;
using sweepd::testing::QueryRows;
using sweepd::testing::ReadFile;
using sweepd::testing::RunCommand;
using sweepd::testing::Rows;
using sweepd::testing::WaitForPortFile;
using sweepd::testing::WaitUntil;
using namespace std::chrono_literals;

const std::string kBin = SWEEPD_BIN_DIR;
// Generous: the first use of the test cache pre-trains the synthetic base model (minutes).
constexpr auto kPhaseLimit = 8min;

// Writes zeros to `path` until the file system refuses; returns the errno it refused with.
int FillFileSystem(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return errno;
  const std::vector<char> block(4096, 0);
  int err = 0;
  while (err == 0) {
    if (std::fwrite(block.data(), 1, block.size(), f) != block.size() || std::fflush(f) != 0) err = errno;
  }
  std::fclose(f);
  return err;
}

class FullDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("sweepd-full-disk-");
    artifacts_ = dir_ + "/artifacts";
    fs::create_directories(artifacts_);
    if (::mount("tmpfs", artifacts_.c_str(), "tmpfs", 0, "size=1m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs at " << artifacts_ << " (" << std::strerror(errno)
                   << "): this test needs root (CAP_SYS_ADMIN) to have a file system it can fill";
    }
    mounted_ = true;
  }
  void TearDown() override {
    worker_.reset();
    sweepd_.reset();
    if (mounted_) ::umount2(artifacts_.c_str(), MNT_DETACH);
    if (!HasFailure()) fs::remove_all(dir_);
  }

  std::string Logs() {
    return "sweepd log:\n" + ReadFile(dir_ + "/sweepd.log") + "\nworker log:\n" + ReadFile(dir_ + "/worker.log");
  }

  std::string dir_, artifacts_;
  bool mounted_ = false;
  std::unique_ptr<ChildProcess> sweepd_, worker_;
};

TEST_F(FullDisk, CheckpointOnAFullDiskCrashesTheAttemptAndTheRetrySucceedsOnceSpaceIsBack) {
  const std::string filler = artifacts_ + "/filler";
  ASSERT_EQ(FillFileSystem(filler), ENOSPC);

  const std::string db = dir_ + "/sweepd.db";
  const std::string addr_file = dir_ + "/sweepd.addr";
  sweepd_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{kBin + "/sweepd", "--db", db, "--listen", "127.0.0.1:0", "--port-file", addr_file,
                               "--heartbeat-ms", "300"},
      dir_ + "/sweepd.log");
  const std::string address = WaitForPortFile(addr_file, 60s);
  ASSERT_FALSE(address.empty()) << ReadFile(dir_ + "/sweepd.log");
  worker_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{kBin + "/sweep-worker", "--coordinator", address, "--workdir", dir_ + "/worker",
                               "--artifacts", artifacts_, "--hostname", "full-disk-node"},
      dir_ + "/worker.log", std::vector<std::string>{"SWEEPD_CACHE=" + std::string(SWEEPD_TEST_CACHE)});
  std::string out;
  ASSERT_EQ(RunCommand({kBin + "/sweepctl", "--coordinator", address, "submit",
                        std::string(SWEEPD_SOURCE_DIR) + "/tests/e2e/full_disk_sweep.yaml"},
                       &out),
            0)
      << out;

  // 1. The first attempt reaches its first checkpoint and finds the disk full.
  const std::string finished =
      "SELECT a.job_id, a.number, a.outcome, a.exit_code, a.stderr_tail FROM attempts a "
      "WHERE a.outcome <> '' ORDER BY a.number";
  Rows attempts;
  ASSERT_TRUE(WaitUntil([&] { return !(attempts = QueryRows(db, finished)).empty(); }, kPhaseLimit)) << Logs();
  const std::string job_id = attempts[0][0];
  EXPECT_EQ(attempts[0][1], "1");
  EXPECT_EQ(attempts[0][2], OutcomeName(Outcome::kCrashed)) << attempts[0][4];
  EXPECT_EQ(attempts[0][3], std::to_string(exit_status::kCrashed)) << attempts[0][4];
  EXPECT_NE(attempts[0][4].find("crash (I/O error): "), std::string::npos) << attempts[0][4];
  EXPECT_NE(attempts[0][4].find("No space left on device"), std::string::npos) << attempts[0][4];
  // Retried, not failed for good; and the torn checkpoint is gone, so nothing holds the space.
  const Rows job = QueryRows(db, "SELECT state FROM jobs WHERE job_id = ?1", {job_id});
  ASSERT_EQ(job.size(), 1u);
  EXPECT_NE(job[0][0], "failed");
  const fs::path checkpoints = fs::path(artifacts_) / job_id / "checkpoints";
  ASSERT_TRUE(fs::is_directory(checkpoints));
  EXPECT_TRUE(fs::is_empty(checkpoints)) << "a failed checkpoint was left in " << checkpoints;

  // 2. Space comes back; the retry (after sweepd's back-off) runs the job to the end.
  fs::remove(filler);
  ASSERT_TRUE(WaitUntil(
      [&] {
        const Rows state = QueryRows(db, "SELECT state FROM jobs WHERE job_id = ?1", {job_id});
        return !state.empty() && (state[0][0] == "succeeded" || state[0][0] == "failed");
      },
      kPhaseLimit))
      << Logs();
  attempts = QueryRows(db, finished);
  ASSERT_EQ(attempts.size(), 2u) << Logs();
  EXPECT_EQ(attempts[1][1], "2");
  EXPECT_EQ(attempts[1][2], OutcomeName(Outcome::kSucceeded)) << attempts[1][4];
  EXPECT_EQ(QueryRows(db, "SELECT state FROM jobs WHERE job_id = ?1", {job_id})[0][0], "succeeded");
  EXPECT_EQ(QueryRows(db, "SELECT count(*) FROM results WHERE job_id = ?1", {job_id})[0][0], "1");
  // The retried attempt's checkpoints are on the tmpfs, up to the last step.
  bool has_final = false;
  for (const auto& entry : fs::directory_iterator(checkpoints)) {
    has_final |= fs::exists(entry.path() / "adapter_model.safetensors") &&
                 entry.path().filename().string().rfind("step-", 0) == 0;
  }
  EXPECT_TRUE(has_final) << "no checkpoint in " << checkpoints;

  EXPECT_EQ(WEXITSTATUS(worker_->Stop(30s)), 0) << Logs();
  EXPECT_EQ(WEXITSTATUS(sweepd_->Stop()), 0) << ReadFile(dir_ + "/sweepd.log");
}

}  // namespace
}  // namespace sweepd
