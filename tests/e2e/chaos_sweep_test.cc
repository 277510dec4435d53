// Chaos end to end: the real sweepd, four real sweep-workers and the real sweep-train run a
// sweep of 50 tiny jobs (tests/e2e/chaos_sweep.yaml) on loopback while sweepd is SIGKILLed
// twice (and restarted on the same database and port) and one worker is SIGKILLed (and
// restarted). Every kill waits, by polling the database, until work is in flight. The sweep
// must end with every job succeeded exactly once and every metric point stored exactly once.
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"
#include "tests/support/sqlite_rows.h"
#include "tests/support/stored_metrics.h"

namespace sweepd {
namespace {

using sweepd::testing::ChildProcess;
using sweepd::testing::ExpectNoPointStoredTwice;
using sweepd::testing::ExpectStoredPointsEqualTheSpool;
using sweepd::testing::MakeTempDir;
using sweepd::testing::ReadFile;
using sweepd::testing::RunCommand;
using sweepd::testing::WaitForPortFile;
using sweepd::testing::WaitUntil;
using namespace std::chrono_literals;

const std::string kBin = SWEEPD_BIN_DIR;
constexpr int kJobs = 50;
constexpr int kSteps = 20;  // train.steps of the spec
// Generous: the first use of the test cache pre-trains the synthetic base model (minutes).
constexpr auto kPhaseLimit = 8min;

using sweepd::testing::Rows;

using sweepd::testing::QueryRows;

int64_t QueryInt(const std::string& db_path, const std::string& sql) {
  const Rows rows = QueryRows(db_path, sql);
  return rows.empty() || rows[0].empty() || rows[0][0].empty() ? -1 : std::stoll(rows[0][0]);
}

class ChaosSweep : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("sweepd-chaos-");
    db_ = dir_ + "/sweepd.db";
  }
  void TearDown() override {
    workers_.clear();
    sweepd_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Starts sweepd on the database; port 0 picks a free port, a restart passes the old one.
  // Leases of 10 s: most outlive a restart (workers reconnect with backoff), while the
  // killed worker's lease expires soon enough to keep the test short.
  void StartSweepd(int port) {
    const std::string addr_file = dir_ + "/sweepd.addr";
    std::remove(addr_file.c_str());
    sweepd_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{kBin + "/sweepd", "--db", db_, "--listen",
                                 "127.0.0.1:" + std::to_string(port), "--port-file", addr_file,
                                 "--lease-seconds", "10", "--heartbeat-ms", "300"},
        dir_ + "/sweepd.log");
    address_ = WaitForPortFile(addr_file, 60s);
    ASSERT_FALSE(address_.empty()) << ReadFile(dir_ + "/sweepd.log");
  }
  int Port() const { return std::stoi(address_.substr(address_.rfind(':') + 1)); }

  // SIGKILL, as a crash would; then a new sweepd on the same file and port.
  void CrashAndRestartSweepd() {
    const int port = Port();
    sweepd_->Signal(SIGKILL);
    const int status = sweepd_->Wait(30s);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    StartSweepd(port);
    ASSERT_EQ(Port(), port);
  }

  // A worker named `name` with its own workdir; it runs build/bin/sweep-train.
  void StartWorker(const std::string& name) {
    workers_[name] = std::make_unique<ChildProcess>(
        std::vector<std::string>{kBin + "/sweep-worker", "--coordinator", address_, "--workdir",
                                 dir_ + "/" + name, "--hostname", name, "--kill-grace", "2"},
        dir_ + "/" + name + ".log",
        std::vector<std::string>{"SWEEPD_CACHE=" + std::string(SWEEPD_TEST_CACHE)});
  }

  int64_t Succeeded() {
    return QueryInt(db_, "SELECT count(*) FROM jobs WHERE state = 'succeeded'");
  }
  // Hostnames of workers holding an attempt whose trainer runs and has streamed points.
  std::vector<std::string> StreamingWorkers() {
    std::vector<std::string> names;
    for (const auto& row :
         QueryRows(db_,
               "SELECT DISTINCT w.hostname FROM attempts a "
               "JOIN workers w ON w.worker_id = a.worker_id JOIN jobs j ON j.job_id = a.job_id "
               "WHERE a.state = 'running' AND j.state = 'running' AND EXISTS "
               "(SELECT 1 FROM metric_points m WHERE m.attempt_id = a.attempt_id)")) {
      names.push_back(row[0]);
    }
    return names;
  }
  // Waits until at least `succeeded` jobs succeeded and some worker is streaming the
  // metrics of a running attempt; returns that worker's name ("" if the limit passed).
  std::string WaitForWorkInFlight(int64_t succeeded) {
    std::string name;
    WaitUntil(
        [&] {
          if (Succeeded() < succeeded) return false;
          const auto streaming = StreamingWorkers();
          if (streaming.empty()) return false;
          name = streaming.front();
          return true;
        },
        kPhaseLimit);
    return name;
  }
  std::string Logs() {
    std::string out = "sweepd log:\n" + ReadFile(dir_ + "/sweepd.log");
    for (const auto& [name, w] : workers_) out += "\n" + name + " log:\n" + ReadFile(w->log_path());
    return out;
  }

  std::string dir_, db_, address_;
  std::unique_ptr<ChildProcess> sweepd_;
  std::map<std::string, std::unique_ptr<ChildProcess>> workers_;
};

TEST_F(ChaosSweep, KilledCoordinatorAndWorkerLeaveEveryJobSucceededOnceAndEveryPointStoredOnce) {
  ASSERT_NO_FATAL_FAILURE(StartSweepd(0));
  const std::vector<std::string> names = {"node1", "node2", "node3", "node4"};
  for (const auto& name : names) StartWorker(name);
  std::string out;
  ASSERT_EQ(RunCommand({kBin + "/sweepctl", "--coordinator", address_, "submit",
                        std::string(SWEEPD_SOURCE_DIR) + "/tests/e2e/chaos_sweep.yaml"},
                       &out),
            0)
      << out;

  // 1. sweepd crashes while jobs run and stream their metrics.
  ASSERT_NE(WaitForWorkInFlight(3), "") << Logs();
  ASSERT_NO_FATAL_FAILURE(CrashAndRestartSweepd()) << Logs();

  // 2. A worker crashes in the middle of a job; a new one starts on the same node.
  const std::string victim = WaitForWorkInFlight(15);
  ASSERT_NE(victim, "") << Logs();
  workers_[victim]->Signal(SIGKILL);
  const int status = workers_[victim]->Wait(30s);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  StartWorker(victim);

  // 3. sweepd crashes again, with the lost worker's lease possibly still open.
  ASSERT_NE(WaitForWorkInFlight(30), "") << Logs();
  ASSERT_NO_FATAL_FAILURE(CrashAndRestartSweepd()) << Logs();

  ASSERT_TRUE(WaitUntil([&] { return Succeeded() == kJobs; }, kPhaseLimit))
      << Succeeded() << " of " << kJobs << " succeeded\n"
      << Logs();
  for (const auto& [name, w] : workers_) {
    EXPECT_EQ(WEXITSTATUS(w->Stop(30s)), 0) << name << "\n" << ReadFile(w->log_path());
  }
  EXPECT_EQ(WEXITSTATUS(sweepd_->Stop()), 0) << ReadFile(dir_ + "/sweepd.log");

  // Every job of the sweep succeeded, by exactly one attempt, with one result from it.
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM sweep_jobs WHERE sweep = 'chaos'"), kJobs);
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM jobs WHERE state <> 'succeeded'"), 0);
  const Rows wins = QueryRows(db_,
                          "SELECT j.job_id, count(a.attempt_id) FROM jobs j LEFT JOIN attempts a "
                          "ON a.job_id = j.job_id AND a.outcome = 'succeeded' GROUP BY j.job_id");
  ASSERT_EQ(static_cast<int>(wins.size()), kJobs);
  for (const auto& row : wins) EXPECT_EQ(row[1], "1") << "succeeded attempts of " << row[0];
  EXPECT_EQ(
      QueryInt(db_,
               "SELECT count(*) FROM results r JOIN attempts a ON a.attempt_id = r.attempt_id "
               "AND a.job_id = r.job_id AND a.outcome = 'succeeded'"),
      kJobs);
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM results"), kJobs);

  // No metric point stored twice, over every attempt (finished, cut short or fenced off).
  ExpectNoPointStoredTwice(db_);

  // Each succeeded attempt's points are seq 1..N, exactly the lines its worker spooled (none
  // lost, none twice), from the start line to the final line, steps consecutive up to the last.
  const Rows succeeded =
      QueryRows(db_,
            "SELECT a.attempt_id, a.job_id, a.number, w.hostname FROM attempts a "
            "JOIN workers w ON w.worker_id = a.worker_id "
            "WHERE a.outcome = 'succeeded' ORDER BY a.job_id");
  ASSERT_EQ(static_cast<int>(succeeded.size()), kJobs);
  for (const auto& a : succeeded) {
    SCOPED_TRACE("attempt " + a[0] + " of " + a[1] + " on " + a[3]);
    const std::vector<int64_t> steps = ExpectStoredPointsEqualTheSpool(
        db_, a[0], dir_ + "/" + a[3] + "/jobs/" + a[1] + "/attempt-" + a[2] + ".metrics.jsonl");
    if (!steps.empty()) {
      EXPECT_EQ(steps.back(), kSteps);
    }
  }

  // What the chaos did, for the log: attempts by outcome.
  for (const auto& row : QueryRows(db_, "SELECT outcome, count(*) FROM attempts GROUP BY outcome")) {
    std::cout << "attempts " << (row[0].empty() ? "(open)" : row[0]) << ": " << row[1] << "\n";
  }
}

}  // namespace
}  // namespace sweepd
