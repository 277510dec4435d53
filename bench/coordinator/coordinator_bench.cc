// coordinator_bench: the real sweepd binary on loopback, a generated sweep of N jobs, and W
// simulated workers (threads, one gRPC channel each) that register, lease, start, stream
// metric points, and finish until every job is done. Reports leases per second, lease
// latency percentiles, metric points per second and sweepd's peak resident memory.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
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

#include "sweepd/v1/sweepd.grpc.pb.h"

extern char** environ;

namespace {

namespace v1 = sweepd::v1;
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

// A spec of exactly `jobs` jobs: LoRA ranks x seeds, no evaluation, no budget.
std::string GenerateSpec(const std::string& name, int jobs) {
  const int ranks = std::min(jobs, 100);
  const int seeds = (jobs + ranks - 1) / ranks;
  std::ostringstream s;
  s << "name: " << name
    << "\nbase: {model: \"synthetic:tiny\"}\ntracks: [A]\ntrain: {steps: 1}\nseeds: [";
  for (int i = 0; i < seeds; ++i) s << (i ? ", " : "") << i;
  s << "]\nmethods:\n  - {method: lora, r: [";
  for (int r = 1; r <= ranks; ++r) s << (r > 1 ? ", " : "") << r;
  s << "]}\n";
  return s.str();
}

int64_t PeakRssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

// User + system CPU seconds the process has used (/proc/PID/stat fields 14 and 15).
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t end_of_name = stat.rfind(')');
  if (end_of_name == std::string::npos) return 0;
  std::istringstream fields(stat.substr(end_of_name + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string ReadAddress(const std::string& file, std::chrono::seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    std::ifstream in(file);
    std::string addr;
    if (in >> addr && !addr.empty()) return addr;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return "";
}

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
  const std::string port_file = dir + "/addr";
  std::vector<std::string> args = {opt.sweepd,    "--db",        dir + "/sweepd.db", "--listen",
                                   "127.0.0.1:0", "--port-file", port_file};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, (dir + "/sweepd.log").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) {
    std::fprintf(stderr, "coordinator_bench: cannot start %s\n", opt.sweepd.c_str());
    std::exit(1);
  }
  posix_spawn_file_actions_destroy(&actions);
  const std::string address = ReadAddress(port_file, std::chrono::seconds(30));
  if (address.empty()) {
    std::fprintf(stderr, "coordinator_bench: sweepd did not start; see %s/sweepd.log\n",
                 dir.c_str());
    kill(pid, SIGKILL);
    std::exit(1);
  }

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
