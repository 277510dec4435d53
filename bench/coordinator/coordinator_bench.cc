// coordinator_bench: the real sweepd binary on loopback, a generated sweep of N jobs, and W
// simulated workers (threads, one gRPC channel each) that register, lease, start, stream
// metric points, and finish until every job is done. Reports leases per second, lease
// latency percentiles, metric points per second and sweepd's peak resident memory.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "bench/coordinator/bench_sweepd.h"
#include "sweepd/v1/sweepd.grpc.pb.h"


namespace {

namespace v1 = sweepd::v1;
using sweepd::bench::CpuSeconds;
using sweepd::bench::GenerateSpec;
using sweepd::bench::PeakRssKib;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string sweepd = std::string(SWEEPD_BIN_DIR) + "/sweepd";
  std::vector<int> workers = {10, 50, 200};
  int jobs = 10000;
  int points = 20;  // metric lines per job
};

struct RunResult {
  int workers = 0;
  int jobs = 0;
  double submit_s = 0;
  double wall_s = 0;
  int64_t leases = 0;
  int64_t points = 0;
  double p50_ms = 0, p99_ms = 0;
  int64_t peak_rss_kib = 0;
  double sweepd_cpu_s = 0;  // user + system CPU of sweepd while the workers ran
  int failed_calls = 0;
};

// One simulated worker: runs jobs until the sweep has none left.
void WorkerLoop(const std::string& address, const Options& opt, std::atomic<int>& done, int total,
                std::vector<double>& latencies_ms, std::atomic<int64_t>& points,
                std::atomic<int>& failures) {
  auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                           grpc::ChannelArguments());
  auto stub = v1::WorkerService::NewStub(channel);
  grpc::ClientContext reg_ctx;
  v1::RegisterRequest reg;
  reg.set_hostname("bench");
  v1::Slot* slot = reg.add_slots();
  slot->set_device_kind("cpu");
  v1::RegisterResponse registered;
  if (!stub->Register(&reg_ctx, reg, &registered).ok()) {
    ++failures;
    return;
  }
  while (done.load() < total) {
    grpc::ClientContext ctx;
    v1::LeaseJobRequest req;
    req.set_worker_id(registered.worker_id());
    req.set_device_kind("cpu");
    v1::LeaseJobResponse lease;
    const auto start = Clock::now();
    grpc::Status s = stub->LeaseJob(&ctx, req, &lease);
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (!s.ok()) {
      ++failures;
      continue;
    }
    if (!lease.granted()) {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::min<int64_t>(lease.retry_after_ms(), 200)));
      continue;
    }
    {
      grpc::ClientContext sctx;
      v1::StartedRequest started;
      started.set_attempt_id(lease.attempt_id());
      started.set_fencing_token(lease.fencing_token());
      v1::StartedResponse resp;
      if (!stub->AttemptStarted(&sctx, started, &resp).ok()) ++failures;
    }
    {
      grpc::ClientContext mctx;
      auto stream = stub->StreamMetrics(&mctx);
      v1::MetricBatch batch;
      batch.set_attempt_id(lease.attempt_id());
      batch.set_fencing_token(lease.fencing_token());
      for (int i = 1; i <= opt.points; ++i) {
        v1::MetricPoint* p = batch.add_points();
        p->set_seq(i);
        p->set_json(i == opt.points
                        ? R"({"type":"final","kind":"train","final_loss":1.0,"scores":{}})"
                        : R"({"type":"step","step":)" + std::to_string(i) +
                              R"(,"total_steps":100,"loss":1.5,"tokens_per_s":1000.0})");
      }
      stream->Write(batch);
      stream->WritesDone();
      v1::MetricAck ack;
      while (stream->Read(&ack)) {
      }
      if (!stream->Finish().ok()) ++failures;
      points += opt.points;
    }
    grpc::ClientContext fctx;
    v1::FinishAttemptRequest finish;
    finish.set_attempt_id(lease.attempt_id());
    finish.set_fencing_token(lease.fencing_token());
    finish.set_outcome(v1::OUTCOME_SUCCEEDED);
    finish.set_last_metric_seq(opt.points);
    v1::FinishAttemptResponse finished;
    if (stub->FinishAttempt(&fctx, finish, &finished).ok() && finished.accepted())
      ++done;
    else
      ++failures;
  }
}

RunResult RunOnce(const Options& opt, int workers) {
  RunResult r;
  r.workers = workers;
  r.jobs = opt.jobs;
  char tmpl[] = "/tmp/sweepd-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::string address;
  const pid_t pid = sweepd::bench::StartSweepd(opt.sweepd, dir, address);

  auto sweeps =
      v1::SweepService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::SubmitSweepRequest submit;
  submit.set_spec_yaml(GenerateSpec("bench", opt.jobs));
  v1::SubmitSweepResponse submitted;
  const auto submit_start = Clock::now();
  grpc::Status s = sweeps->SubmitSweep(&ctx, submit, &submitted);
  r.submit_s = std::chrono::duration<double>(Clock::now() - submit_start).count();
  if (!s.ok() || !submitted.accepted() || submitted.jobs_total() != opt.jobs) {
    std::fprintf(stderr, "coordinator_bench: submit failed: %s (%lld jobs)\n",
                 s.error_message().c_str(), static_cast<long long>(submitted.jobs_total()));
    kill(pid, SIGKILL);
    std::exit(1);
  }

  std::atomic<int> done{0};
  std::atomic<int64_t> points{0};
  std::atomic<int> failures{0};
  std::vector<std::vector<double>> latencies(workers);
  std::vector<std::thread> threads;
  const double cpu_before = CpuSeconds(pid);
  const auto start = Clock::now();
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back(
        [&, w] { WorkerLoop(address, opt, done, opt.jobs, latencies[w], points, failures); });
  }
  for (auto& t : threads) t.join();
  r.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  r.sweepd_cpu_s = CpuSeconds(pid) - cpu_before;
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  r.leases = done.load();
  r.points = points.load();
  r.failed_calls = failures.load();
  if (!all.empty()) {
    r.p50_ms = all[all.size() / 2];
    r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  r.peak_rss_kib = PeakRssKib(pid);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  std::filesystem::remove_all(dir);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"coordinator_bench: simulated workers against the real sweepd"};
  Options opt;
  app.add_option("--sweepd", opt.sweepd, "sweepd binary")->capture_default_str();
  app.add_option("--workers", opt.workers, "worker counts to run, one run each")->delimiter(',');
  app.add_option("--jobs", opt.jobs, "jobs in the sweep")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--points", opt.points, "metric lines per job")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::printf(
      "| workers | jobs | points/job | submit s | wall s | leases/s | lease p50 ms | lease p99 ms "
      "| "
      "metric points/s | sweepd CPU ms/job | sweepd peak RSS MiB | failed calls |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  for (int w : opt.workers) {
    RunResult r = RunOnce(opt, w);
    std::printf("| %d | %d | %d | %.2f | %.1f | %.1f | %.2f | %.2f | %.0f | %.3f | %.1f | %d |\n",
                r.workers, r.jobs, opt.points, r.submit_s, r.wall_s, r.leases / r.wall_s, r.p50_ms,
                r.p99_ms, r.points / r.wall_s,
                1000.0 * r.sweepd_cpu_s / std::max<int64_t>(1, r.leases), r.peak_rss_kib / 1024.0,
                r.failed_calls);
    std::fflush(stdout);
  }
  return 0;
}
