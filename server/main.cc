// sweepd: the coordinator. Opens (or creates) the SQLite database, applies migrations,
// serves SweepService and WorkerService on one port, expires leases in the background,
// and shuts down gracefully on SIGTERM/SIGINT. Restarting on the same file keeps everything.
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "common/version.h"
#include "server/audit_trail.h"
#include "server/auth.h"
#include "server/call_limits.h"
#include "server/coordinator_metrics.h"
#include "server/rpc_metrics_interceptor.h"
#include "server/scheduler.h"
#include "server/store_names.h"
#include "server/sweep_service.h"
#include "server/tls.h"
#include "server/worker_service.h"

namespace {

// The handler only writes the signal number into a pipe that main() reads: it may run
// on any thread (gRPC starts threads of its own), and write() is async-signal-safe.
int g_signal_pipe[2] = {-1, -1};

void OnSignal(int sig) {
  const unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &byte, 1);
}

bool InstallSignalHandlers() {
  if (pipe(g_signal_pipe) != 0) return false;
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  return sigaction(SIGTERM, &action, nullptr) == 0 && sigaction(SIGINT, &action, nullptr) == 0 &&
         sigaction(SIGHUP, &action, nullptr) == 0;
}

// Writes "HOST:PORT" so scripts and tests can find a server started on port 0; the
// rename makes the file appear complete or not at all.
bool WritePortFile(const std::string& path, const std::string& address) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) return false;
    out << address << "\n";
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

std::string HostOf(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  return colon == std::string::npos ? listen : listen.substr(0, colon);
}

// Only these hosts keep the port off the network (an empty host means every interface).
bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "[::1]" || host == "::1" || host.rfind("127.", 0) == 0;
}

// The next signal; with `warn_every_ms` > 0, logs `warning` each time that long passes first.
unsigned char WaitForSignal(int64_t warn_every_ms, const std::string& warning) {
  pollfd fd{g_signal_pipe[0], POLLIN, 0};
  for (;;) {
    const int n = poll(&fd, 1, warn_every_ms > 0 ? static_cast<int>(warn_every_ms) : -1);
    if (n == 0) {
      spdlog::warn("{}", warning);
      continue;
    }
    unsigned char signal_number = 0;
    if (n > 0 && read(g_signal_pipe[0], &signal_number, 1) == 1) return signal_number;
    if (errno != EINTR) return SIGTERM;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sweepd: coordinator of PEFT research sweeps (gRPC + SQLite)"};
  std::string db_path;
  std::string listen = "127.0.0.1:50051";
  std::string port_file;
  std::string metrics_listen;
  int64_t metrics_retention_s = 600;
  int64_t lease_seconds = 60;
  int64_t heartbeat_ms = 5000;
  std::string auth_file;
  bool insecure_no_auth = false;
  sweepd::server::ServerTlsFiles tls;
  sweepd::server::CallLimitOptions call_limits;
  app.add_option("--db", db_path, "SQLite database file (created if missing)")->required();
  app.add_option("--listen", listen, "HOST:PORT to serve on; port 0 picks a free port")->capture_default_str();
  app.add_option("--port-file", port_file, "write the bound HOST:PORT here once serving");
  app.add_option("--lease-seconds", lease_seconds, "a job's lease lasts this long without a heartbeat")
      ->check(CLI::Range(int64_t{2}, int64_t{86400}))
      ->capture_default_str();
  app.add_option("--heartbeat-ms", heartbeat_ms, "heartbeat interval workers are told to use")
      ->check(CLI::Range(int64_t{100}, int64_t{600000}))
      ->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen, "HOST:PORT for Prometheus /metrics (port 0: a free one)");
  app.add_option("--metrics-retention-seconds", metrics_retention_s,
                 "keep a finished job's series on /metrics this long")
      ->check(CLI::Range(int64_t{1}, int64_t{7 * 86400}))
      ->capture_default_str();
  app.add_option("--auth-file", auth_file,
                 "tokens and roles, one 'ROLE NAME SHA256HEX' a line (sweepctl auth new-token); "
                 "re-read on SIGHUP");
  app.add_flag("--insecure-no-auth", insecure_no_auth,
               "serve a non-loopback --listen without --auth-file (anyone who reaches it may do anything)");
  app.add_option("--tls-cert", tls.cert_file, "serve TLS with this certificate chain (PEM)");
  app.add_option("--tls-key", tls.key_file, "the private key of --tls-cert (PEM)");
  app.add_option("--tls-client-ca", tls.client_ca_file,
                 "mutual TLS: workers must present a certificate signed by this CA");
  app.add_option("--max-requests-per-second", call_limits.requests_per_second,
                 "calls one caller (a token, or without --auth-file a peer address) may make a second; "
                 "0: no limit")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  app.add_option("--max-streams-per-caller", call_limits.streams,
                 "watch and metric streams one caller may hold open at once; 0: no limit")
      ->check(CLI::Range(int64_t{0}, int64_t{1000000}))
      ->capture_default_str();
  app.set_version_flag("--version", std::string("sweepd ") + SWEEPD_VERSION);
  CLI11_PARSE(app, argc, argv);

  if (heartbeat_ms >= lease_seconds * 1000) {
    std::fprintf(stderr, "sweepd: --heartbeat-ms (%lld) must be shorter than the lease (%lld s)\n",
                 static_cast<long long>(heartbeat_ms), static_cast<long long>(lease_seconds));
    return 2;
  }

  const bool loopback = IsLoopback(HostOf(listen));
  if (auth_file.empty() && !loopback && !insecure_no_auth) {
    std::fprintf(stderr,
                 "sweepd: --listen %s is reachable from other machines, and without --auth-file anyone "
                 "who reaches it may submit sweeps and report results. Give --auth-file FILE (see "
                 "docs/security.md), listen on 127.0.0.1, or pass --insecure-no-auth on a network you "
                 "trust.\n",
                 listen.c_str());
    return 2;
  }
  if (!metrics_listen.empty() && metrics_listen.front() == ':') metrics_listen = "127.0.0.1" + metrics_listen;
  auto auth = sweepd::server::Authenticator::Open(auth_file);
  if (!auth.ok()) {
    std::fprintf(stderr, "sweepd: %s\n", auth.status().message().c_str());
    return 2;
  }
  if (!tls.client_ca_file.empty()) (*auth)->RequireWorkerCertificate();
  auto credentials = sweepd::server::ServerCredentialsFor(tls);
  if (!credentials.ok()) {
    std::fprintf(stderr, "sweepd: %s\n", credentials.status().message().c_str());
    return 2;
  }

  if (!InstallSignalHandlers()) {
    std::perror("sweepd: signal handlers");
    return 1;
  }

  auto store = sweepd::server::Store::Open(db_path, sweepd::server::Scheduler::SystemClock());
  if (!store.ok()) {
    std::fprintf(stderr, "sweepd: %s\n", store.status().message().c_str());
    return 1;
  }
  sweepd::server::SchedulerOptions options;
  options.lease_ms = lease_seconds * 1000;
  options.heartbeat_interval_ms = heartbeat_ms;
  // The scheduler reports to the metrics and the metrics read the scheduler's snapshot at
  // scrape time, so the snapshot source reaches the scheduler through this pointer.
  std::atomic<sweepd::server::Scheduler*> scheduler_for_snapshot{nullptr};
  auto metrics = sweepd::server::CoordinatorMetrics::Start(
      metrics_listen, std::chrono::seconds(metrics_retention_s), [&scheduler_for_snapshot] {
        sweepd::server::Scheduler* s = scheduler_for_snapshot.load();
        return s ? s->Snapshot() : sweepd::server::CoordinatorSnapshot{};
      });
  if (!metrics.ok()) {
    std::fprintf(stderr, "sweepd: --metrics-listen %s: %s\n", metrics_listen.c_str(),
                 metrics.status().message().c_str());
    return 1;
  }
  sweepd::server::Scheduler scheduler(**store, options, sweepd::server::Scheduler::SystemClock, metrics->get());
  scheduler_for_snapshot = &scheduler;
  sweepd::server::AuditTrail audit(**store, sweepd::server::Scheduler::SystemClock, (*auth)->enabled());
  sweepd::server::CallLimits limits(call_limits);
  sweepd::server::SweepServiceOptions sweep_options;
  sweep_options.auth = auth->get();
  sweep_options.audit = &audit;
  sweep_options.call_limits = &limits;
  sweepd::server::SweepServiceImpl sweep_service(**store, scheduler, sweep_options);
  sweepd::server::WorkerServiceImpl worker_service(scheduler, auth->get(), &audit, &limits);

  grpc::ServerBuilder builder;
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<sweepd::server::RpcMetricsInterceptorFactory>(**metrics));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  int port = 0;
  builder.AddListeningPort(listen, *credentials, &port);
  builder.RegisterService(&sweep_service);
  builder.RegisterService(&worker_service);
  builder.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "sweepd: cannot listen on %s; is the port in use? try --listen 127.0.0.1:0\n",
                 listen.c_str());
    return 1;
  }
  const std::string address = HostOf(listen) + ":" + std::to_string(port);
  scheduler.StartHousekeeping();
  if (!port_file.empty() && !WritePortFile(port_file, address)) {
    std::fprintf(stderr, "sweepd: cannot write --port-file %s\n", port_file.c_str());
    server->Shutdown();
    return 1;
  }
  spdlog::info("sweepd {} serving on {} (database {})", SWEEPD_VERSION, address,
               std::filesystem::absolute(db_path).string());
  if (!(*metrics)->address().empty()) spdlog::info("Prometheus metrics on http://{}/metrics", (*metrics)->address());

  if (auth_file.empty() && !loopback) {
    spdlog::warn("--insecure-no-auth: {} has no authentication; anyone who reaches it may do anything",
                 address);
  }
  if ((*auth)->enabled()) spdlog::info("tokens from {} (SIGHUP re-reads it)", auth_file);
  if (!tls.cert_file.empty()) {
    spdlog::info("TLS{}; certificate files re-read every {} s", tls.client_ca_file.empty() ? "" : " with client certificates",
                 sweepd::server::kTlsRefreshSeconds);
  }
  const int64_t warn_every_ms = auth_file.empty() && !loopback ? 60000 : 0;
  unsigned char signal_number = 0;
  for (;;) {
    signal_number = WaitForSignal(warn_every_ms, "--insecure-no-auth: " + address +
                                                     " serves anyone without authentication");
    if (signal_number != SIGHUP) break;
    const sweepd::Status reloaded = (*auth)->Reload();
    if (reloaded.ok()) {
      spdlog::info("SIGHUP: re-read {}", auth_file.empty() ? std::string("(no --auth-file)") : auth_file);
    } else {
      spdlog::error("SIGHUP: {}; the previous tokens stay in force", reloaded.message());
    }
  }
  spdlog::info("signal {}: shutting down", static_cast<int>(signal_number));
  // Unary calls take milliseconds; long-lived metric streams are cut after the grace
  // period and resent by their workers (points are stored once), so a second is enough.
  sweep_service.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  scheduler.StopHousekeeping();
  scheduler_for_snapshot = nullptr;
  metrics->reset();  // stop serving /metrics before the scheduler goes away
  spdlog::info("stopped");
  return 0;
}
