// sweep-worker end to end: the real sweepd and sweep-worker binaries as subprocesses on
// loopback, a real SQLite database, and tests/agent/data/fake_trainer.sh as sweep-train
// (it keeps the trainer's contract: JSON lines, exit codes, checkpoints, --resume).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "sweepd/v1/sweepd.grpc.pb.h"
#include "tests/agent/running_binary.h"
#include "tests/agent/trainer_script.h"
#include "common/metric_line.h"
#include "worker/agent/metric_spool.h"

namespace sweepd::agent {
namespace {

namespace fs = std::filesystem;
namespace pb = ::sweepd::v1;
using std::chrono::milliseconds;
using testing::RunningBinary;

const fs::path kBin = SWEEPD_BIN_DIR;
const fs::path kData = fs::path(SWEEPD_SOURCE_DIR) / "tests/agent/data";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Polls until pred holds; the limit only guards against a hang.
bool WaitUntil(const std::function<bool()>& pred,
               std::chrono::seconds limit = std::chrono::seconds(120)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

struct AttemptRow {
  int number = 0;
  std::string worker_id;
  std::string outcome;
  int signal = 0;
  std::string stderr_tail;
};

class WorkerE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    db_ = dir_ / "sweepd.db";
  }
  void TearDown() override {
    workers_.clear();
    sweepd_.reset();
    fs::remove_all(dir_);
  }

  // Starts sweepd on `port` (0: a free one) and waits until it serves.
  void StartSweepd(int port = 0) {
    const fs::path port_file = dir_ / "sweepd.addr";
    fs::remove(port_file);
    sweepd_ = std::make_unique<RunningBinary>(
        (kBin / "sweepd").string(),
        std::vector<std::string>{
            "--db", db_.string(), "--listen", "127.0.0.1:" + std::to_string(port), "--port-file",
            port_file.string(), "--heartbeat-ms", "200", "--lease-seconds", "60"});
    ASSERT_TRUE(WaitUntil([&] { return fs::exists(port_file) && fs::file_size(port_file) > 0; }))
        << sweepd_->output();
    std::string addr = ReadFile(port_file);
    addr.erase(addr.find_last_not_of(" \n") + 1);
    address_ = addr;
    sweep_ = pb::SweepService::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }

  int Port() const { return std::stoi(address_.substr(address_.rfind(':') + 1)); }

  // Starts a worker named `name` with its own workdir and a trainer with `env`.
  RunningBinary& StartWorker(const std::string& name, const std::map<std::string, std::string>& env,
                             std::vector<std::string> extra = {}) {
    const fs::path home = dir_ / name;
    fs::create_directories(home);
    const fs::path trainer = testing::WriteTrainerScript(home, env);
    std::vector<std::string> args = {
        "--coordinator",          address_,     "--trainer", trainer.string(), "--workdir",
        (home / "work").string(), "--hostname", name,        "--kill-grace",   "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    workers_[name] = std::make_unique<RunningBinary>((kBin / "sweep-worker").string(), args);
    return *workers_[name];
  }

  // Submits tests/agent/data/one_job.yaml; returns the training job's id.
  std::string SubmitOneJob() {
    pb::SubmitSweepRequest req;
    req.set_spec_yaml(ReadFile(kData / "one_job.yaml"));
    req.set_spec_path("one_job.yaml");
    pb::SubmitSweepResponse resp;
    grpc::ClientContext ctx;
    const grpc::Status st = sweep_->SubmitSweep(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_TRUE(resp.accepted()) << (resp.problems_size() > 0 ? resp.problems(0).message() : "");
    std::string job_id;
    grpc::ClientContext ctx2;
    pb::GetSweepRequest get;
    get.set_sweep(resp.sweep());
    pb::GetSweepResponse sweep;
    EXPECT_TRUE(sweep_->GetSweep(&ctx2, get, &sweep).ok());
    EXPECT_EQ(sweep.jobs_size(), 1);
    return sweep.jobs_size() > 0 ? sweep.jobs(0).job_id() : "";
  }

  // Every page of the job's log (GetJobLog answers about 1 MB at a time).
  pb::GetJobLogResponse JobLog(const std::string& job_id) {
    pb::GetJobLogResponse all;
    for (int64_t after = 0;;) {
      pb::GetJobLogRequest req;
      req.set_job_id(job_id);
      req.set_after_seq(after);
      pb::GetJobLogResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      if (!sweep_->GetJobLog(&ctx, req, &resp).ok()) return {};
      for (const auto& p : resp.points()) *all.add_points() = p;
      all.set_state(resp.state());
      all.set_stderr_tail(resp.stderr_tail());
      if (!resp.more() || resp.points_size() == 0) return all;
      after = resp.points(resp.points_size() - 1).seq();
    }
  }

  bool WaitJobState(const std::string& job_id, pb::JobState state,
                    std::chrono::seconds limit = std::chrono::seconds(120)) {
    return WaitUntil([&] { return JobLog(job_id).state() == state; }, limit);
  }

  // The attempts of a job, read from sweepd's database.
  std::vector<AttemptRow> Attempts(const std::string& job_id) {
    std::vector<AttemptRow> rows;
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(db_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* q = nullptr;
    EXPECT_EQ(
        sqlite3_prepare_v2(db,
                           "SELECT number, worker_id, COALESCE(outcome, ''), COALESCE(signal, 0), "
                           "COALESCE(stderr_tail, '') FROM attempts "
                           "WHERE job_id = ? ORDER BY number",
                           -1, &q, nullptr),
        SQLITE_OK);
    sqlite3_bind_text(q, 1, job_id.c_str(), -1, SQLITE_TRANSIENT);
    while (sqlite3_step(q) == SQLITE_ROW) {
      AttemptRow r;
      r.number = sqlite3_column_int(q, 0);
      r.worker_id = reinterpret_cast<const char*>(sqlite3_column_text(q, 1));
      r.outcome = reinterpret_cast<const char*>(sqlite3_column_text(q, 2));
      r.signal = sqlite3_column_int(q, 3);
      r.stderr_tail = reinterpret_cast<const char*>(sqlite3_column_text(q, 4));
      rows.push_back(r);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return rows;
  }

  fs::path JobDir(const std::string& worker, const std::string& job_id) {
    return dir_ / worker / "work" / "jobs" / job_id;
  }

  fs::path dir_;
  fs::path db_;
  std::string address_;
  std::unique_ptr<RunningBinary> sweepd_;
  std::unique_ptr<pb::SweepService::Stub> sweep_;
  std::map<std::string, std::unique_ptr<RunningBinary>> workers_;
};

std::vector<int64_t> StepsIn(const pb::GetJobLogResponse& log) {
  std::vector<int64_t> steps;
  for (const auto& p : log.points()) {
    const auto j = nlohmann::json::parse(p.json());
    if (j["type"] == "step") steps.push_back(j["step"].get<int64_t>());
  }
  return steps;
}

TEST_F(WorkerE2eTest, SigkilledTrainerIsRetriedAndResumesFromItsCheckpoint) {
  StartSweepd();
  const std::string job = SubmitOneJob();
  ASSERT_FALSE(job.empty());
  StartWorker("node1", {{"FAKE_STEP_SLEEP", "0.1"}, {"FAKE_CKPT_EVERY", "5"}});
  // Let the trainer write a checkpoint or two, then kill it the hard way.
  const fs::path latest = JobDir("node1", job) / "checkpoints" / "latest";
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(latest) && std::stoi(ReadFile(latest)) >= 10; }))
      << workers_["node1"]->output();
  pid_t pid = 0;
  std::ifstream(JobDir("node1", job) / "trainer.pid") >> pid;
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);

  ASSERT_TRUE(WaitJobState(job, pb::JOB_STATE_SUCCEEDED)) << workers_["node1"]->output();
  const auto attempts = Attempts(job);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].outcome, "crashed");
  EXPECT_EQ(attempts[0].signal, SIGKILL);
  EXPECT_EQ(attempts[1].outcome, "succeeded");
  // The retry started from the checkpoint, not from step 0, and went on to the end.
  const auto log = JobLog(job);
  ASSERT_GT(log.points_size(), 0);
  const auto start = nlohmann::json::parse(log.points(0).json());
  EXPECT_EQ(start["type"], "start");
  EXPECT_GE(start["resumed_from"].get<int>(), 10);
  const auto steps = StepsIn(log);
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(steps.front(), start["resumed_from"].get<int>() + 1);
  EXPECT_EQ(steps.back(), 40);
  const auto final_line = nlohmann::json::parse(log.points(log.points_size() - 1).json());
  EXPECT_EQ(final_line["type"], "final");
}

TEST_F(WorkerE2eTest, SweepdAwayWhileTheJobEndsLosesNoMetric) {
  StartSweepd();
  const std::string job = SubmitOneJob();
  ASSERT_FALSE(job.empty());
  // 150 steps of 0.1 s: the job ends while sweepd is away.
  StartWorker("node1", {{"FAKE_STEPS", "150"}, {"FAKE_STEP_SLEEP", "0.1"}});
  ASSERT_TRUE(WaitUntil([&] { return StepsIn(JobLog(job)).size() >= 5; }))
      << workers_["node1"]->output();
  const int port = Port();
  sweepd_->Signal(SIGTERM);
  EXPECT_EQ(sweepd_->Wait().exit_code, 0);
  const fs::path spool = JobDir("node1", job) / "attempt-1.metrics.jsonl";
  const auto spooled_at_stop = ReadSpoolFile(spool)->size();
  // The outage lasts until the job has run on and finished into the spool (15 s of steps
  // when the machine is idle; longer under load, so this waits for it, not for a time).
  auto final_spooled = [&] {
    auto lines = ReadSpoolFile(spool);
    return lines.ok() && !lines->empty() && lines->back().json.find("\"final\"") != std::string::npos;
  };
  ASSERT_TRUE(WaitUntil(final_spooled, std::chrono::minutes(3))) << workers_["node1"]->output();
  auto spooled = ReadSpoolFile(spool);
  ASSERT_TRUE(spooled.ok());
  EXPECT_GT(spooled->size(), spooled_at_stop);

  StartSweepd(port);
  ASSERT_TRUE(WaitJobState(job, pb::JOB_STATE_SUCCEEDED)) << workers_["node1"]->output();
  const auto log = JobLog(job);
  // Every point of the spool is stored, in order, exactly once.
  ASSERT_EQ(log.points_size(), static_cast<int>(spooled->size()));
  for (int i = 0; i < log.points_size(); ++i) {
    EXPECT_EQ(log.points(i).seq(), i + 1);
    EXPECT_EQ(log.points(i).json(), (*spooled)[i].json);
  }
  std::vector<int64_t> expected;
  for (int64_t k = 1; k <= 150; ++k) expected.push_back(k);
  EXPECT_EQ(StepsIn(log), expected);
  const auto attempts = Attempts(job);
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].outcome, "succeeded");
}

TEST_F(WorkerE2eTest, DrainedWorkerHandsItsJobToAnotherWorker) {
  StartSweepd();
  const std::string job = SubmitOneJob();
  ASSERT_FALSE(job.empty());
  const std::string shared = (dir_ / "artifacts").string();
  const std::map<std::string, std::string> trainer = {
      {"FAKE_STEPS", "60"}, {"FAKE_STEP_SLEEP", "0.1"}, {"FAKE_CKPT_EVERY", "5"}};
  RunningBinary& first =
      StartWorker("node1", trainer, {"--artifacts", shared, "--drain-timeout", "0"});
  ASSERT_TRUE(WaitUntil([&] { return StepsIn(JobLog(job)).size() >= 12; })) << first.output();
  // Only now a second node joins, so the job cannot have started there.
  StartWorker("node2", trainer, {"--artifacts", shared});
  first.Signal(SIGTERM);
  EXPECT_EQ(first.Wait().exit_code, 0) << first.output();

  ASSERT_TRUE(WaitJobState(job, pb::JOB_STATE_SUCCEEDED)) << workers_["node2"]->output();
  const auto attempts = Attempts(job);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].outcome, "handed_back");
  EXPECT_EQ(attempts[1].outcome, "succeeded");
  EXPECT_NE(attempts[0].worker_id, attempts[1].worker_id);
  // node2 found node1's checkpoint in the shared folder and resumed from it.
  const auto log = JobLog(job);
  const auto start = nlohmann::json::parse(log.points(0).json());
  EXPECT_GE(start["resumed_from"].get<int>(), 10);
  EXPECT_EQ(StepsIn(log).back(), 60);
  EXPECT_TRUE(fs::exists(JobDir("node2", job) / "attempt-2.metrics.jsonl"));
}

// The lines of tests/agent/data/bad_metric_lines.txt, each one the trainer prints.
std::vector<std::string> BadMetricLines() {
  std::vector<std::string> lines;
  std::istringstream in(ReadFile(kData / "bad_metric_lines.txt"));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

TEST_F(WorkerE2eTest, LinesThatAreNotMetricLinesAreStoredAsErrorsOfTheAttempt) {
  StartSweepd();
  const std::string job = SubmitOneJob();
  ASSERT_FALSE(job.empty());
  RunningBinary& worker =
      StartWorker("node1", {{"FAKE_STEPS", "3"}, {"FAKE_LINES_FILE", (kData / "bad_metric_lines.txt").string()}});
  ASSERT_TRUE(WaitJobState(job, pb::JOB_STATE_SUCCEEDED)) << worker.output();
  EXPECT_TRUE(worker.Running()) << worker.output();  // {"type":1} used to abort it
  const auto log = JobLog(job);
  const std::vector<std::string> bad = BadMetricLines();
  ASSERT_FALSE(bad.empty());
  // Right after the start line, one error line each, naming why, in the order printed.
  ASSERT_GT(log.points_size(), static_cast<int>(bad.size()));
  for (size_t i = 0; i < bad.size(); ++i) {
    const std::string& stored = log.points(static_cast<int>(i) + 1).json();
    Result<MetricLine> line = MetricLine::Read(stored);
    ASSERT_TRUE(line.ok()) << stored;
    EXPECT_EQ(line->type(), "error") << bad[i];
    EXPECT_EQ(line->Text("excerpt").value_or(""), bad[i].substr(0, 200)) << stored;
    EXPECT_NE(line->Text("error").value_or("").find("stdout line " + std::to_string(i + 2)),
              std::string::npos)
        << stored;
  }
  // The readers of the sweep are not broken by them: logs (typed) and results.
  RunningBinary logs((kBin / "sweepctl").string(),
                     {"--coordinator", address_, "logs", job, "--no-follow"});
  EXPECT_EQ(logs.Wait().exit_code, 0) << logs.output();
  EXPECT_NE(logs.output().find("error: stdout line 2"), std::string::npos) << logs.output();
  RunningBinary results((kBin / "sweepctl").string(),
                        {"--coordinator", address_, "export", "agent-e2e"});
  EXPECT_EQ(results.Wait().exit_code, 0) << results.output();
  EXPECT_EQ(results.output().find("inf"), std::string::npos) << results.output();
  const auto attempts = Attempts(job);
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].outcome, "succeeded");
}

TEST_F(WorkerE2eTest, FinalLineWithoutItsRequiredFieldsFailsTheAttempt) {
  StartSweepd();
  const std::string job = SubmitOneJob();
  ASSERT_FALSE(job.empty());
  RunningBinary& worker =
      StartWorker("node1", {{"FAKE_STEPS", "2"}, {"FAKE_FINAL_LINE", R"({"type":"final"})"}});
  ASSERT_TRUE(WaitUntil([&] {
    const auto a = Attempts(job);
    return !a.empty() && !a[0].outcome.empty();
  })) << worker.output();
  const auto attempts = Attempts(job);
  EXPECT_EQ(attempts[0].outcome, "crashed");
  EXPECT_NE(attempts[0].stderr_tail.find("does not count as success"), std::string::npos)
      << attempts[0].stderr_tail;
  EXPECT_NE(attempts[0].stderr_tail.find("job_id"), std::string::npos) << attempts[0].stderr_tail;
  EXPECT_NE(JobLog(job).state(), pb::JOB_STATE_SUCCEEDED);
  EXPECT_TRUE(worker.Running()) << worker.output();
}

TEST_F(WorkerE2eTest, BigLinesSpooledWhileSweepdWasAwayAreSentInBatchesWithinTheCallLimit) {
  StartSweepd();
  const std::string job = SubmitOneJob();
  ASSERT_FALSE(job.empty());
  // 102 lines of 900 KB once the steps are done: about 90 MB, over gRPC's 64 MiB in one call.
  StartWorker("node1", {{"FAKE_STEPS", "60"}, {"FAKE_STEP_SLEEP", "0.1"}, {"FAKE_BIG_LINES", "102:900000"}});
  ASSERT_TRUE(WaitUntil([&] { return StepsIn(JobLog(job)).size() >= 3; }))
      << workers_["node1"]->output();
  const int port = Port();
  sweepd_->Signal(SIGTERM);
  EXPECT_EQ(sweepd_->Wait().exit_code, 0);
  const fs::path spool = JobDir("node1", job) / "attempt-1.metrics.jsonl";
  auto final_spooled = [&] {
    auto lines = ReadSpoolFile(spool);
    return lines.ok() && !lines->empty() && lines->back().json.find("\"final\"") != std::string::npos;
  };
  ASSERT_TRUE(WaitUntil(final_spooled, std::chrono::minutes(3))) << workers_["node1"]->output();
  const auto spooled = ReadSpoolFile(spool);
  ASSERT_TRUE(spooled.ok());
  StartSweepd(port);
  // Read from the database (GetJobLog answers in pages of about 1 MB).
  ASSERT_TRUE(WaitUntil([&] {
    const auto a = Attempts(job);
    return !a.empty() && !a.back().outcome.empty();
  }, std::chrono::minutes(3))) << workers_["node1"]->output();
  const auto attempts = Attempts(job);
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].outcome, "succeeded") << attempts[0].stderr_tail;
  // Every spooled line is stored once, the big ones as printed.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT COUNT(*), SUM(LENGTH(json) > 800000) FROM metric_points "
                               "WHERE job_id = ?",
                               -1, &q, nullptr),
            SQLITE_OK);
  sqlite3_bind_text(q, 1, job.c_str(), -1, SQLITE_TRANSIENT);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(q, 0), static_cast<int64_t>(spooled->size()));
  EXPECT_EQ(sqlite3_column_int64(q, 1), 102);
  sqlite3_finalize(q);
  sqlite3_close(db);
}

TEST_F(WorkerE2eTest, SpoolWriteThatFailsFailsTheAttemptAsACrash) {
  StartSweepd();
  const std::string job = SubmitOneJob();
  ASSERT_FALSE(job.empty());
  // The worker's workdir on a 256 KiB tmpfs: the trainer's 40 lines of 20 KB do not fit.
  const fs::path work = dir_ / "node1" / "work";
  fs::create_directories(work);
  if (::mount("tmpfs", work.c_str(), "tmpfs", 0, "size=256k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs at " << work << " (" << std::strerror(errno)
                 << "); run as root or in a user namespace";
  }
  struct Unmount {
    fs::path at;
    ~Unmount() { ::umount2(at.c_str(), MNT_DETACH); }
  } unmount{work};
  RunningBinary& worker =
      StartWorker("node1", {{"FAKE_STEPS", "2"}, {"FAKE_BIG_LINES", "40:20000"}});
  ASSERT_TRUE(WaitUntil([&] {
    const auto a = Attempts(job);
    return !a.empty() && !a[0].outcome.empty();
  })) << worker.output();
  const auto attempts = Attempts(job);
  EXPECT_EQ(attempts[0].outcome, "crashed");
  EXPECT_NE(attempts[0].stderr_tail.find("No space left on device"), std::string::npos)
      << attempts[0].stderr_tail;
  for (const AttemptRow& a : attempts) EXPECT_NE(a.outcome, "succeeded");
  EXPECT_NE(JobLog(job).state(), pb::JOB_STATE_SUCCEEDED);
  workers_.clear();  // stop the worker before the tmpfs goes
}

}  // namespace
}  // namespace sweepd::agent
