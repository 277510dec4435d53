// SLURM for real: a private one-machine cluster (deploy/slurm/local-cluster.sh: Debian's
// slurmctld, slurmd and munge, CPU "GPUs" as generic resources) runs the project's
// deploy/slurm/sweep-worker.sbatch as job arrays of real sweep-workers against a real sweepd,
// which run a sweep of real sweep-train jobs (tests/deploy/slurm_sweep.yaml). SLURM's faults
// happen mid-job: `scontrol requeue` of one worker, `scancel` of a whole array (signalled, and
// sent SIGKILL as a lost node would be), a drained node. Every sweep must end with every
// job succeeded exactly once and every metric point stored exactly once (read from SQLite).
#include <signal.h>
#include <sys/wait.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "tests/support/process.h"
#include "tests/support/sqlite_rows.h"
#include "tests/support/stored_metrics.h"

namespace sweepd {
namespace {

using sweepd::testing::ChildProcess;
using sweepd::testing::ExpectNoPointStoredTwice;
using sweepd::testing::ExpectStoredPointsEqualTheSpool;
using sweepd::testing::MakeTempDir;
using sweepd::testing::QueryRows;
using sweepd::testing::ReadFile;
using sweepd::testing::Rows;
using sweepd::testing::RunCommand;
using sweepd::testing::WaitForPortFile;
using sweepd::testing::WaitUntil;
using namespace std::chrono_literals;

const std::string kBin = SWEEPD_BIN_DIR;
const std::string kSource = SWEEPD_SOURCE_DIR;
const std::string kSpec = kSource + "/tests/deploy/slurm_sweep.yaml";
const std::string kCluster = kSource + "/deploy/slurm/local-cluster.sh";
// SLURM's client commands, where Debian's slurm-client puts them.
const std::string kSlurmBin = "/usr/bin/";
const std::string kSbatch = kSource + "/deploy/slurm/sweep-worker.sbatch";
// Generous: the first use of the test cache pre-trains the synthetic base model (minutes).
constexpr auto kPhaseLimit = 8min;
// SLURM's KillWait in the test cluster: what a signalled worker has before SIGKILL. The
// workers' drain (SWEEP_WORKER_DRAIN_S) is shorter, so a signalled worker always reports.
constexpr int kKillWaitS = 15;
// The one node local-cluster.sh configures.
const std::string kNode = "localnode";
constexpr int kDrainS = 3;
constexpr int kLeaseS = 10;

int64_t QueryInt(const std::string& db, const std::string& sql,
                 const std::vector<std::string>& params = {}) {
  const Rows rows = QueryRows(db, sql, params);
  return rows.empty() || rows[0].empty() || rows[0][0].empty() ? -1 : std::stoll(rows[0][0]);
}

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

class SlurmSweep : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("sweepd-slurm-");
    db_ = dir_ + "/sweepd.db";
    const YAML::Node spec = YAML::LoadFile(kSpec);
    sweep_ = spec["name"].as<std::string>();
    jobs_ = static_cast<int64_t>(spec["seeds"].size());
    steps_ = spec["train"]["steps"].as<int64_t>();

    std::string out;
    ASSERT_EQ(RunCommand({kCluster, "start", dir_ + "/slurm", "--cpus", "8", "--gpus", "4",
                          "--kill-wait", std::to_string(kKillWaitS)},
                         &out, 2min),
              0)
        << out;
    const auto conf = out.rfind("SLURM_CONF=");
    ASSERT_NE(conf, std::string::npos) << out;
    cluster_started_ = true;
    // sbatch passes its environment on to the job (--export=ALL): these reach the sbatch
    // file and the workers it starts.
    setenv("SLURM_CONF", Trim(out.substr(conf + 11)).c_str(), 1);
    setenv("SWEEPD_HOME", std::filesystem::path(kBin).parent_path().c_str(), 1);
    setenv("SWEEPD_CACHE", SWEEPD_TEST_CACHE, 1);
    setenv("SWEEP_WORKER_WORKDIR", (dir_ + "/scratch").c_str(), 1);
    setenv("SWEEP_WORKER_DRAIN_S", std::to_string(kDrainS).c_str(), 1);

    const std::string addr_file = dir_ + "/sweepd.addr";
    sweepd_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{kBin + "/sweepd", "--db", db_, "--listen", "127.0.0.1:0",
                                 "--port-file", addr_file, "--lease-seconds",
                                 std::to_string(kLeaseS), "--heartbeat-ms", "500"},
        dir_ + "/sweepd.log");
    address_ = WaitForPortFile(addr_file, 60s);
    ASSERT_FALSE(address_.empty()) << ReadFile(dir_ + "/sweepd.log");
    setenv("SWEEPD_ADDR", address_.c_str(), 1);
    ASSERT_EQ(RunCommand({kBin + "/sweepctl", "--coordinator", address_, "submit", kSpec}, &out),
              0)
        << out;
    ASSERT_EQ(QueryInt(db_, "SELECT count(*) FROM sweep_jobs WHERE sweep = ?1", {sweep_}), jobs_);
  }

  void TearDown() override {
    if (cluster_started_) {
      std::string out;
      EXPECT_EQ(RunCommand({kCluster, "stop", dir_ + "/slurm"}, &out, 2min), 0) << out;
    }
    if (sweepd_) sweepd_->Stop();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Runs a SLURM command (sbatch, squeue, scontrol, scancel); fails the test on an error.
  std::string Slurm(const std::string& tool, std::vector<std::string> args) {
    args.insert(args.begin(), kSlurmBin + tool);
    std::string out;
    const int rc = RunCommand(args, &out, 1min);
    EXPECT_EQ(rc, 0) << tool << ": " << out;
    return Trim(out);
  }

  // Submits the project's sbatch file as an array of `tasks` workers of `gpus` GPUs each;
  // returns the array's job id.
  std::string SubmitArray(int tasks, int gpus) {
    const std::string out = Slurm(
        "sbatch", {"--parsable", "--array=0-" + std::to_string(tasks - 1),
         "--gres=gpu:" + std::to_string(gpus), "--cpus-per-task=1", "--time=30",
         "--output=" + dir_ + "/slurm-%A_%a.log", kSbatch, "--kill-grace", "2"});
    return out.substr(0, out.find(';'));
  }

  // SLURM's state of each task of an array (RUNNING, PENDING, ...), by the task's job id.
  std::map<std::string, std::string> ArrayTasks(const std::string& array) {
    std::map<std::string, std::string> tasks;
    std::istringstream lines(Slurm("squeue", {"-h", "-r", "-j", array, "-o", "%A %T"}));
    for (std::string id, state; lines >> id >> state;) tasks[id] = state;
    return tasks;
  }

  bool ArrayGone(const std::string& array) {
    std::string out;
    RunCommand({kSlurmBin + "squeue", "-h", "-r", "-j", array, "-o", "%A"}, &out, 1min);
    return Trim(out).empty() || out.find("Invalid job id") != std::string::npos;
  }

  int64_t Succeeded() {
    return QueryInt(db_, "SELECT count(*) FROM jobs WHERE state = 'succeeded'");
  }
  // Workers a SLURM array started that are registered and alive.
  int64_t AliveWorkersOf(const std::string& array) {
    return QueryInt(db_,
                    "SELECT count(*) FROM workers WHERE state = 'alive' AND "
                    "json_extract(labels_json, '$.slurm_array') = ?1",
                    {array});
  }
  // SLURM job ids of the workers holding an attempt whose trainer runs and has streamed.
  std::vector<std::string> StreamingSlurmJobs() {
    std::vector<std::string> ids;
    for (const auto& row : QueryRows(
             db_,
             "SELECT DISTINCT json_extract(w.labels_json, '$.slurm_job') FROM attempts a "
             "JOIN workers w ON w.worker_id = a.worker_id JOIN jobs j ON j.job_id = a.job_id "
             "WHERE a.state = 'running' AND j.state = 'running' AND EXISTS "
             "(SELECT 1 FROM metric_points m WHERE m.attempt_id = a.attempt_id)")) {
      ids.push_back(row[0]);
    }
    return ids;
  }
  // Waits until at least `succeeded` jobs succeeded and some worker streams the metrics of
  // a running attempt; returns that worker's SLURM job id ("" if the limit passed).
  std::string WaitForWorkInFlight(int64_t succeeded) {
    std::string id;
    WaitUntil(
        [&] {
          if (Succeeded() < succeeded) return false;
          const auto streaming = StreamingSlurmJobs();
          if (streaming.empty()) return false;
          id = streaming.front();
          return true;
        },
        kPhaseLimit);
    return id;
  }
  // Attempts not yet finished or expired.
  int64_t OpenAttempts() {
    return QueryInt(db_, "SELECT count(*) FROM attempts WHERE state IN ('leased', 'running')");
  }

  std::string Logs() {
    std::string out = "sweepd log:\n" + ReadFile(dir_ + "/sweepd.log");
    for (const auto& f : std::filesystem::directory_iterator(dir_)) {
      if (f.path().filename().string().rfind("slurm-", 0) == 0) {
        out += "\n" + f.path().filename().string() + ":\n" + ReadFile(f.path());
      }
    }
    out += "\nslurmd log (tail):\n";
    const std::string slurmd = ReadFile(dir_ + "/slurm/log/slurmd.log");
    out += slurmd.substr(slurmd.size() > 4000 ? slurmd.size() - 4000 : 0);
    return out;
  }

  void ExpectEveryJobSucceededOnceAndEveryPointStoredOnce();

  std::string dir_, db_, address_, sweep_;
  int64_t jobs_ = 0, steps_ = 0;
  bool cluster_started_ = false;
  std::unique_ptr<ChildProcess> sweepd_;
};

void SlurmSweep::ExpectEveryJobSucceededOnceAndEveryPointStoredOnce() {
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM jobs WHERE state <> 'succeeded'"), 0);
  const Rows wins = QueryRows(db_,
                              "SELECT j.job_id, count(a.attempt_id) FROM jobs j LEFT JOIN "
                              "attempts a ON a.job_id = j.job_id AND a.outcome = 'succeeded' "
                              "GROUP BY j.job_id");
  ASSERT_EQ(static_cast<int64_t>(wins.size()), jobs_);
  for (const auto& row : wins) EXPECT_EQ(row[1], "1") << "succeeded attempts of " << row[0];
  EXPECT_EQ(QueryInt(db_,
                     "SELECT count(*) FROM results r JOIN attempts a ON a.attempt_id = "
                     "r.attempt_id AND a.job_id = r.job_id AND a.outcome = 'succeeded'"),
            jobs_);
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM results"), jobs_);

  // No metric point stored twice, over every attempt (finished, handed back or expired).
  ExpectNoPointStoredTwice(db_);

  // Each succeeded attempt's points are seq 1..N, exactly the lines its worker spooled in
  // the workdir the sbatch file gave it, from the start line to the final line.
  const Rows succeeded =
      QueryRows(db_,
                "SELECT a.attempt_id, a.job_id, a.number, "
                "json_extract(w.labels_json, '$.slurm_job') FROM attempts a "
                "JOIN workers w ON w.worker_id = a.worker_id "
                "WHERE a.outcome = 'succeeded' ORDER BY a.job_id");
  ASSERT_EQ(static_cast<int64_t>(succeeded.size()), jobs_);
  for (const auto& a : succeeded) {
    SCOPED_TRACE("attempt " + a[0] + " of " + a[1] + " in SLURM job " + a[3]);
    const std::vector<int64_t> steps = ExpectStoredPointsEqualTheSpool(
        db_, a[0],
        dir_ + "/scratch/sweep-worker-" + a[3] + "-0/jobs/" + a[1] + "/attempt-" + a[2] + ".metrics.jsonl");
    ASSERT_FALSE(steps.empty());
    EXPECT_EQ(steps.back(), steps_);
  }
  for (const auto& row : QueryRows(db_, "SELECT outcome, count(*) FROM attempts GROUP BY outcome")) {
    std::cout << "attempts " << (row[0].empty() ? "(open)" : row[0]) << ": " << row[1] << "\n";
  }
}

TEST_F(SlurmSweep, JobArrayFinishesTheSweepWhileOneWorkerIsRequeuedMidJob) {
  const int kWorkers = 3;
  const std::string array = SubmitArray(kWorkers, 1);
  ASSERT_FALSE(array.empty());
  ASSERT_TRUE(WaitUntil([&] { return AliveWorkersOf(array) == kWorkers; }, kPhaseLimit))
      << Logs();
  // Each worker made one slot from SLURM_GPUS_ON_NODE and registered as <node>-<job id>.
  for (const auto& row :
       QueryRows(db_, "SELECT hostname, slots_json, json_extract(labels_json, '$.slurm_job') "
                      "FROM workers WHERE json_extract(labels_json, '$.slurm_array') = ?1",
                 {array})) {
    EXPECT_EQ(nlohmann::json::parse(row[1]).size(), 1u) << row[0] << ": " << row[1];
    EXPECT_EQ(row[0], kNode + "-" + row[2]);
  }

  const std::string victim = WaitForWorkInFlight(3);
  ASSERT_NE(victim, "") << Logs();
  const Rows victim_attempts = QueryRows(
      db_,
      "SELECT a.attempt_id FROM attempts a JOIN workers w ON w.worker_id = a.worker_id "
      "WHERE a.state IN ('leased', 'running') AND json_extract(w.labels_json, '$.slurm_job') = ?1",
      {victim});
  ASSERT_FALSE(victim_attempts.empty());
  Slurm("scontrol", {"requeue", victim});

  // SLURM signals the worker and its trainer; within KillWait the worker finishes or hands
  // back its job and reports it (no lease left to expire, no failure counted).
  for (const auto& a : victim_attempts) {
    ASSERT_TRUE(WaitUntil(
        [&] {
          return QueryInt(db_, "SELECT count(*) FROM attempts WHERE attempt_id = ?1 AND "
                               "state = 'finished'",
                          {a[0]}) == 1;
        },
        std::chrono::seconds(kKillWaitS + 5)))
        << a[0] << "\n"
        << Logs();
    const std::string outcome =
        QueryRows(db_, "SELECT outcome FROM attempts WHERE attempt_id = ?1", {a[0]})[0][0];
    EXPECT_TRUE(outcome == "handed_back" || outcome == "succeeded") << a[0] << ": " << outcome;
  }
  // SLURM holds a requeued job for a while (BeginTime); start it now. Its worker registers
  // again, in the same workdir, and takes part in the rest of the sweep.
  ASSERT_TRUE(WaitUntil([&] { return ArrayTasks(array)[victim] == "PENDING"; }, 1min))
      << Logs();
  Slurm("scontrol", {"update", "JobId=" + victim, "StartTime=now"});
  auto last_start = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitUntil(
      [&] {
        // A launch right after the requeue can be refused by slurmd ("Job N already killed, do
        // not launch batch job"); SLURM then holds the task PENDING again: start it again.
        if (std::chrono::steady_clock::now() - last_start > std::chrono::seconds(5) &&
            ArrayTasks(array)[victim] == "PENDING") {
          last_start = std::chrono::steady_clock::now();
          std::string out;  // "release" of a task that is not held fails; that is fine here
          RunCommand({kSlurmBin + "scontrol", "release", victim}, &out, 1min);
          Slurm("scontrol", {"update", "JobId=" + victim, "StartTime=now"});
        }
        return QueryInt(db_,
                        "SELECT count(*) FROM workers WHERE state = 'alive' AND "
                        "json_extract(labels_json, '$.slurm_job') = ?1",
                        {victim}) == 1 &&
               ArrayTasks(array)[victim] == "RUNNING";
      },
      2min))
      << Logs();
  EXPECT_NE(Slurm("scontrol", {"show", "job", victim}).find("Restarts=1"), std::string::npos);

  ASSERT_TRUE(WaitUntil([&] { return Succeeded() == jobs_; }, kPhaseLimit))
      << Succeeded() << " of " << jobs_ << " succeeded\n"
      << Logs();
  // The sweep is done: the array is cancelled, and its workers drain and leave.
  Slurm("scancel", {array});
  ASSERT_TRUE(WaitUntil([&] { return ArrayGone(array); }, std::chrono::seconds(kKillWaitS + 30)))
      << Logs();
  EXPECT_EQ(OpenAttempts(), 0);
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM attempts WHERE outcome NOT IN "
                          "('succeeded', 'handed_back')"),
            0);
  ExpectEveryJobSucceededOnceAndEveryPointStoredOnce();
}

TEST_F(SlurmSweep, CancelledArraysLeaveTheirJobsQueuedAndANewArrayFinishesThemAfterADrain) {
  // 1. scancel of a whole array mid-sweep: SLURM signals the workers, which hand their jobs
  //    back at once.
  const std::string first = SubmitArray(2, 1);
  ASSERT_NE(WaitForWorkInFlight(2), "") << Logs();
  Slurm("scancel", {first});
  ASSERT_TRUE(WaitUntil([&] { return ArrayGone(first) && OpenAttempts() == 0; },
                        std::chrono::seconds(kKillWaitS + 30)))
      << Logs();
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM attempts WHERE outcome = 'lease_expired'"), 0);
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM jobs WHERE state IN ('leased', 'running')"), 0);
  const int64_t after_first = Succeeded();
  EXPECT_LT(after_first, jobs_);

  // 2. A second array sent SIGKILL (batch shell and every step), as when a node is lost:
  //    jobs whose worker could not report return to the queue when their leases expire.
  const std::string second = SubmitArray(2, 2);
  ASSERT_NE(WaitForWorkInFlight(after_first + 2), "") << Logs();
  const int64_t in_flight = OpenAttempts();
  ASSERT_GT(in_flight, 0);
  Slurm("scancel", {"--full", "--signal=KILL", second});
  ASSERT_TRUE(WaitUntil([&] { return ArrayGone(second); }, 1min)) << Logs();
  ASSERT_TRUE(WaitUntil([&] { return OpenAttempts() == 0; }, std::chrono::seconds(3 * kLeaseS)))
      << Logs();
  // Depending on what SLURM's kill reaches first, the workers hand back or the leases expire;
  // either way every attempt is closed without a failure of the job and nothing waits.
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM attempts WHERE outcome NOT IN "
                          "('succeeded', 'handed_back', 'lease_expired')"),
            0);
  EXPECT_EQ(QueryInt(db_, "SELECT count(*) FROM jobs WHERE state NOT IN ('queued', 'succeeded')"),
            0);
  const int64_t after_second = Succeeded();
  EXPECT_LT(after_second, jobs_);

  // 3. The node is drained: a new array waits in SLURM's queue, and so do the jobs in sweepd's.
  Slurm("scontrol", {"update", "NodeName=" + kNode, "State=DRAIN", "Reason=sweepd-test"});
  const std::string third = SubmitArray(2, 1);
  std::this_thread::sleep_for(5s);
  for (const auto& [id, state] : ArrayTasks(third)) EXPECT_EQ(state, "PENDING") << id;
  EXPECT_EQ(AliveWorkersOf(third), 0);
  EXPECT_EQ(Succeeded(), after_second);
  EXPECT_EQ(OpenAttempts(), 0);

  // 4. Resumed, the node runs the array, which finishes the sweep.
  Slurm("scontrol", {"update", "NodeName=" + kNode, "State=RESUME"});
  ASSERT_TRUE(WaitUntil([&] { return Succeeded() == jobs_; }, kPhaseLimit))
      << Succeeded() << " of " << jobs_ << " succeeded\n"
      << Logs();
  Slurm("scancel", {third});
  ASSERT_TRUE(WaitUntil([&] { return ArrayGone(third); }, std::chrono::seconds(kKillWaitS + 30)))
      << Logs();
  EXPECT_EQ(OpenAttempts(), 0);
  ExpectEveryJobSucceededOnceAndEveryPointStoredOnce();
}

}  // namespace
}  // namespace sweepd
