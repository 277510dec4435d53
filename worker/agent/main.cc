// sweep-worker: the node agent. Parses the command line, probes the node's devices with
// `sweep-train probe`, and runs the Agent until SIGTERM/SIGINT has drained it. Signals
// are blocked in every thread and taken synchronously by the main thread (sigwait).
#include <grpcpp/security/credentials.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <climits>
#include <filesystem>
#include <iostream>
#include <thread>

#include "common/credentials.h"
#include "common/version.h"
#include "worker/agent/agent.h"

namespace {

namespace fs = std::filesystem;
using namespace sweepd::agent;

std::string DefaultTrainer() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "sweep-train";
  return (self.parent_path() / "sweep-train").string();
}

std::string Hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf) != 0) return "unknown";
  return buf;
}

std::vector<SlotInfo> DiscoverSlots(const std::string& trainer, int requested, bool* ok) {
  *ok = true;
  auto devices = ProbeDevices(trainer, std::chrono::seconds(120));
  if (!devices.ok()) {
    spdlog::warn("{}; advertising CPU slots only (check --trainer)", devices.status().message());
    devices = std::vector<Device>{};
  }
  auto slots = PlanSlots(*devices, requested);
  if (!slots.ok()) {
    std::cerr << "sweep-worker: " << slots.status().message() << "\n";
    *ok = false;
    return {};
  }
  for (const auto& s : *slots) {
    spdlog::info("slot {}: {} {} ({} MiB)", s.index, s.device.kind, s.device.name,
                 s.device.memory_bytes >> 20);
  }
  return std::move(*slots);
}

int RunWorker(int argc, char** argv) {
  CLI::App app{
      "sweep-worker: runs sweepd's jobs on this node.\n"
      "Registers the node's GPUs/NPUs (or CPU) with sweepd, leases jobs, runs each in\n"
      "sweep-train, streams its metrics back. SIGTERM drains: no new jobs, running jobs\n"
      "finish within --drain-timeout, the rest are handed back to sweepd."};
  app.set_version_flag("--version", std::string("sweep-worker ") + SWEEPD_VERSION);
  std::string coordinator;
  std::string trainer = DefaultTrainer();
  std::string workdir = "sweep-worker-data";
  std::string artifacts;
  std::string hostname = Hostname();
  int slots = 0;
  std::vector<std::string> labels;
  double job_timeout_s = 0, kill_grace_s = 10, drain_timeout_s = 300, report_timeout_s = 60;
  std::string log_level = "info";
  app.add_option("--coordinator", coordinator, "sweepd's worker address, HOST:PORT")->required();
  std::string token_file;
  sweepd::credentials::ClientTls tls;
  app.add_option("--token-file", token_file,
                 "file holding this node's worker token (default $SWEEPD_TOKEN_FILE); its name is the "
                 "worker id");
  app.add_option("--tls-ca", tls.ca_file, "verify sweepd's TLS certificate with this CA (default $SWEEPD_TLS_CA)");
  app.add_option("--tls-cert", tls.cert_file, "client certificate for mutual TLS (PEM)");
  app.add_option("--tls-key", tls.key_file, "the private key of --tls-cert (PEM)");
  app.add_option("--trainer", trainer, "path of sweep-train (default: beside sweep-worker)");
  app.add_option("--workdir", workdir, "local folder for jobs/<job_id>/ (checkpoints, logs, spool)")
      ->capture_default_str();
  app.add_option("--artifacts", artifacts,
                 "shared folder for checkpoints, so a retry on another node resumes");
  app.add_option("--slots", slots,
                 "number of slots: the first N GPUs, or N CPU slots on a CPU-only node "
                 "(default: one per GPU, else 1)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--label", labels, "k=v label for scheduling, repeatable");
  app.add_option("--hostname", hostname, "name to register under")->capture_default_str();
  app.add_option("--job-timeout", job_timeout_s, "seconds an attempt may run; 0 = no limit")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--kill-grace", kill_grace_s, "seconds from SIGTERM to SIGKILL for a job")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--drain-timeout", drain_timeout_s,
                 "seconds running jobs may go on after SIGTERM before they are handed back")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--report-timeout", report_timeout_s,
                 "seconds a draining worker keeps trying to reach sweepd")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  spdlog::set_level(spdlog::level::from_str(log_level));
  AgentOptions options;
  options.hostname = hostname;
  options.version = SWEEPD_VERSION;
  for (const auto& l : labels) {
    const auto eq = l.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "sweep-worker: --label " << l << ": expected key=value, e.g. --label gpu=h100\n";
      return 2;
    }
    options.labels[l.substr(0, eq)] = l.substr(eq + 1);
  }
  if (!fs::exists(trainer)) {
    std::cerr << "sweep-worker: trainer " << trainer
              << " does not exist; build sweep-train or pass --trainer PATH\n";
    return 2;
  }
  std::error_code ec;
  fs::create_directories(workdir, ec);
  if (ec) {
    std::cerr << "sweep-worker: cannot create --workdir " << workdir << ": " << ec.message()
              << "\n";
    return 2;
  }
  options.attempt.trainer = fs::absolute(trainer).string();
  options.attempt.workdir = fs::absolute(workdir);
  if (!artifacts.empty()) options.attempt.artifacts = fs::absolute(artifacts);
  const auto ms = [](double s) {
    return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
  };
  options.attempt.timeout = ms(job_timeout_s);
  options.attempt.kill_grace = ms(kill_grace_s);
  options.drain_timeout = ms(drain_timeout_s);
  options.report_timeout = ms(report_timeout_s);

  // Block the shutdown signals before any thread exists, so every thread inherits the
  // mask and only sigwait below sees them. SIGUSR1 is the agent's "I am done".
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  bool slots_ok = false;
  std::vector<SlotInfo> slot_list = DiscoverSlots(options.attempt.trainer, slots, &slots_ok);
  if (!slots_ok) return 2;

  sweepd::Result<std::string> token = sweepd::credentials::LoadToken(token_file);
  if (!token.ok()) {
    std::cerr << "sweep-worker: " << token.status().message() << "\n";
    return 2;
  }
  auto channel_credentials = sweepd::credentials::ChannelCredentialsFor(tls);
  if (!channel_credentials.ok()) {
    std::cerr << "sweep-worker: " << channel_credentials.status().message() << "\n";
    return 2;
  }
  CoordinatorClient client(MakeCoordinatorChannel(coordinator, *channel_credentials),
                           std::chrono::seconds(10), std::move(*token));
  Agent agent(options, std::move(slot_list), client);
  spdlog::info("sweep-worker {} on {}: coordinator {}, workdir {}", SWEEPD_VERSION, hostname,
               coordinator, options.attempt.workdir.string());

  int exit_code = 0;
  const pthread_t main_thread = pthread_self();
  std::thread runner([&] {
    exit_code = agent.Run();
    pthread_kill(main_thread, SIGUSR1);
  });
  int terms = 0;
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGUSR1) break;
    if (++terms == 1) {
      spdlog::info("got {}; draining (send it again to hand jobs back now)", strsignal(sig));
      agent.Drain();
    } else {
      agent.HandBackNow();
    }
  }
  runner.join();
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  // Expected failures are reported where they happen; this catches the unexpected ones
  // (a filesystem error, an allocation failure) with one line instead of an abort.
  try {
    return RunWorker(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "sweep-worker: " << e.what() << "\n";
    return 1;
  }
}
