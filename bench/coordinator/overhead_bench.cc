// overhead_bench: the coordinator's overhead over the ideal, in the shape of Ray Tune's
// scalability benchmark (10,000 trials on 16 CPUs) scaled to a small machine: the real
// sweepd, W real sweep-worker processes with S slots each, and a sweep of N jobs whose
// trainer (bench_trainer) takes T seconds and prints P metric lines. The ideal is
// N * T / (W * S) seconds; every line must be stored, which the benchmark checks in the
// database after sweepd stopped.
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "bench/coordinator/bench_sweepd.h"
#include "sweepd/v1/sweepd.grpc.pb.h"

namespace {

namespace v1 = sweepd::v1;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string sweepd = std::string(SWEEPD_BIN_DIR) + "/sweepd";
  std::string worker = std::string(SWEEPD_BIN_DIR) + "/sweep-worker";
  std::string trainer = std::string(SWEEPD_BIN_DIR) + "/bench_trainer";
  int jobs = 10000;
  double job_seconds = 0.1;
  int points = 20;
  int workers = 4;
  int slots = 4;
};

int64_t QueryInt(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  int64_t value = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
    value = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  return value;
}

int64_t CountOf(const v1::SweepSummary& s, v1::JobState state) {
  for (const auto& c : s.counts()) {
    if (c.state() == state) return c.count();
  }
  return 0;
}

int WaitExit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

// SIGTERM to the workers, then to sweepd, and waits for each: nothing is left running.
void StopAll(const std::vector<pid_t>& workers, pid_t sweepd) {
  for (pid_t w : workers) kill(w, SIGTERM);
  for (pid_t w : workers) WaitExit(w);
  kill(sweepd, SIGTERM);
  WaitExit(sweepd);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"overhead_bench: real sweepd and sweep-workers, jobs of a fixed length"};
  Options opt;
  app.add_option("--sweepd", opt.sweepd, "sweepd binary")->capture_default_str();
  app.add_option("--worker", opt.worker, "sweep-worker binary")->capture_default_str();
  app.add_option("--trainer", opt.trainer, "the trainer stand-in")->capture_default_str();
  app.add_option("--jobs", opt.jobs, "jobs in the sweep")->check(CLI::Range(1, 1000000))->capture_default_str();
  app.add_option("--job-seconds", opt.job_seconds, "seconds each job's trainer runs")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--points", opt.points, "metric lines per job (start, steps, final)")
      ->check(CLI::Range(2, 100000))
      ->capture_default_str();
  app.add_option("--workers", opt.workers, "sweep-worker processes")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--slots", opt.slots, "slots per worker")->check(CLI::Range(1, 256))->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  char tmpl[] = "/tmp/sweepd-overhead-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::string address;
  const pid_t sweepd = sweepd::bench::StartSweepd(opt.sweepd, dir, address);
  const std::vector<std::string> env = {
      "BENCH_TRAINER_SECONDS=" + std::to_string(opt.job_seconds),
      "BENCH_TRAINER_POINTS=" + std::to_string(opt.points)};
  std::vector<pid_t> workers;
  for (int w = 0; w < opt.workers; ++w) {
    const std::string name = "bench" + std::to_string(w);
    workers.push_back(sweepd::bench::Spawn(
        {opt.worker, "--coordinator", address, "--trainer", opt.trainer, "--workdir",
         dir + "/" + name, "--slots", std::to_string(opt.slots), "--hostname", name,
         "--log-level", "warn"},
        dir + "/" + name + ".log", env));
  }
  auto sweeps =
      v1::SweepService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  for (int tries = 0;; ++tries) {
    grpc::ClientContext ctx;
    v1::ListWorkersResponse listed;
    if (sweeps->ListWorkers(&ctx, v1::ListWorkersRequest(), &listed).ok() &&
        listed.workers_size() == opt.workers)
      break;
    if (tries > 600) {
      std::fprintf(stderr, "overhead_bench: the workers did not register; see %s\n", dir.c_str());
      StopAll(workers, sweepd);
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  double load_before[3] = {0, 0, 0};
  getloadavg(load_before, 3);
  const double sweepd_cpu_before = sweepd::bench::CpuSeconds(sweepd);
  std::vector<double> worker_cpu_before;
  for (pid_t w : workers) worker_cpu_before.push_back(sweepd::bench::CpuSeconds(w));
  const auto start = Clock::now();
  const int64_t start_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
  {
    grpc::ClientContext ctx;
    v1::SubmitSweepRequest submit;
    submit.set_spec_yaml(sweepd::bench::GenerateSpec("overhead", opt.jobs));
    v1::SubmitSweepResponse submitted;
    const grpc::Status s = sweeps->SubmitSweep(&ctx, submit, &submitted);
    if (!s.ok() || !submitted.accepted() || submitted.jobs_total() != opt.jobs) {
      std::fprintf(stderr,
                   "overhead_bench: submit failed: %s (%lld jobs; --jobs must be a multiple of "
                   "100 above 100)\n",
                   s.error_message().c_str(), static_cast<long long>(submitted.jobs_total()));
      StopAll(workers, sweepd);
      return 1;
    }
  }
  const double submit_s = std::chrono::duration<double>(Clock::now() - start).count();
  // Polled seldom: ListSweeps counts the sweep's jobs, work sweepd would not do otherwise.
  // The end of the run is read from the database afterwards (the last attempt's finish).
  int64_t succeeded = 0, failed = 0;
  while (succeeded + failed < opt.jobs) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    grpc::ClientContext ctx;
    v1::ListSweepsResponse listed;
    if (!sweeps->ListSweeps(&ctx, v1::ListSweepsRequest(), &listed).ok()) continue;
    for (const auto& s : listed.sweeps()) {
      succeeded = CountOf(s, v1::JOB_STATE_SUCCEEDED);
      failed = CountOf(s, v1::JOB_STATE_FAILED);
    }
  }
  const double polled_wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  const double sweepd_cpu = sweepd::bench::CpuSeconds(sweepd) - sweepd_cpu_before;
  double worker_cpu = 0;
  for (size_t i = 0; i < workers.size(); ++i) {
    worker_cpu += sweepd::bench::CpuSeconds(workers[i]) - worker_cpu_before[i];
  }
  double load_after[3] = {0, 0, 0};
  getloadavg(load_after, 3);

  StopAll(workers, sweepd);

  sqlite3* db = nullptr;
  sqlite3_open_v2((dir + "/sweepd.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  const int64_t stored = QueryInt(db, "SELECT count(*) FROM metric_points");
  const int64_t distinct =
      QueryInt(db, "SELECT count(*) FROM (SELECT DISTINCT attempt_id, seq FROM metric_points)");
  const int64_t attempts = QueryInt(db, "SELECT count(*) FROM attempts");
  const int64_t last_finish_ms = QueryInt(db, "SELECT max(finished_ms) FROM attempts");
  sqlite3_close(db);
  // From the submit call to the last attempt's finish as sweepd stored it (both Unix clocks).
  const double wall_s =
      last_finish_ms > start_unix_ms ? (last_finish_ms - start_unix_ms) / 1000.0 : polled_wall_s;

  const double ideal_s = opt.jobs * opt.job_seconds / (opt.workers * opt.slots);
  std::printf(
      "| jobs | job s | points/job | workers x slots | submit s | wall s | ideal s | overhead | "
      "succeeded | failed | attempts | points stored (distinct) | sweepd CPU s | workers CPU s | "
      "load before -> after |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  std::printf(
      "| %d | %.3f | %d | %d x %d | %.2f | %.2f | %.2f | %.2f %% | %lld | %lld | %lld | %lld (%lld) | "
      "%.1f | %.1f | %.2f -> %.2f |\n",
      opt.jobs, opt.job_seconds, opt.points, opt.workers, opt.slots, submit_s, wall_s, ideal_s,
      100.0 * (wall_s / ideal_s - 1.0), static_cast<long long>(succeeded),
      static_cast<long long>(failed), static_cast<long long>(attempts),
      static_cast<long long>(stored), static_cast<long long>(distinct), sweepd_cpu, worker_cpu,
      load_before[0], load_after[0]);
  const bool complete = failed == 0 && stored == static_cast<int64_t>(opt.jobs) * opt.points &&
                        distinct == stored;
  if (!complete) {
    std::fprintf(stderr, "overhead_bench: not every job succeeded or not every line was stored; "
                         "see %s\n", dir.c_str());
    return 1;
  }
  std::filesystem::remove_all(dir);
  return 0;
}
