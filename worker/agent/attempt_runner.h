// AttemptRunner: one attempt of one job on this node. It prepares the job's working
// folder (<workdir>/jobs/<job_id>/, stable across attempts so a retry finds the
// checkpoints), runs `sweep-train run` there in its own process group, spools its stdout
// metric lines, logs its stderr, enforces the timeout, stops it on request (SIGTERM to
// the group, SIGKILL after a grace period) and classifies how it ended. A stdout line that
// is not a metric line, or is over the limits of common/metric_line.h, is spooled as an
// "error" line naming why; a spool write that fails stops the attempt as a crash.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/metric_line.h"
#include "common/status.h"
#include "worker/agent/metric_spool.h"
#include "worker/agent/outcome.h"

namespace sweepd::agent {

struct AttemptSettings {
  std::string trainer;                             // path of sweep-train
  std::filesystem::path workdir;                   // jobs go to workdir/jobs/<job_id>
  std::optional<std::filesystem::path> artifacts;  // shared: checkpoints in <artifacts>/<job_id>
  std::chrono::milliseconds kill_grace{10000};     // SIGTERM to SIGKILL
  std::chrono::milliseconds timeout{0};            // 0: none
  size_t stderr_tail_bytes = metric_limit::kStderrTailBytes;
};

struct AttemptSpec {
  std::string job_id;
  std::string attempt_id;
  int attempt_number = 1;
  std::string config_json;
  std::map<std::string, std::string> env;  // e.g. CUDA_VISIBLE_DEVICES for the slot
};

struct AttemptReport {
  AttemptEnd end;
  Outcome outcome = Outcome::kCrashed;
  std::string stderr_tail;
  std::string result_json;  // the trainer's {"type":"final"} line, if it printed one
  bool resumed = false;     // started with --resume
};

// Threads: Prepare, spool and Run from the slot's thread; Stop from any thread (the
// heartbeat thread on cancel or lost lease, the drain logic, the metric streamer).
// Run uses three helper threads of its own (stdout, stderr, reaper), all joined
// before it returns.
class AttemptRunner {
 public:
  AttemptRunner(AttemptSettings settings, AttemptSpec spec);

  // Creates the working folder, writes job.json, links the shared checkpoint folder,
  // creates the spool. Must succeed before spool() or Run().
  Status Prepare();
  MetricSpool& spool() { return *spool_; }
  const std::filesystem::path& job_dir() const { return job_dir_; }

  // Runs the trainer to its end. on_started runs once the trainer process exists.
  AttemptReport Run(const std::function<void()>& on_started);

  // Asks the trainer to stop; the first reason given is the one reported.
  void Stop(StopReason reason);

 private:
  void OnStdoutLine(const std::string& line);
  void OnStderrLine(const std::string& line);
  // Appends to the spool; a failed write stops the attempt (reported as a crash).
  void Spool(const std::string& line);

  const AttemptSettings settings_;
  const AttemptSpec spec_;
  std::filesystem::path job_dir_;
  std::unique_ptr<MetricSpool> spool_;
  bool resume_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  StopReason stop_ = StopReason::kNone;  // guarded by mu_
  bool exited_ = false;                  // guarded by mu_

  // Owned by the stdout reader thread while Run runs.
  std::string final_line_;
  std::string final_error_;  // why final_line_ does not count as success; "" when it does
  std::string spool_error_;  // the first failed spool write; "" when none failed
  int64_t stdout_lines_ = 0;
  int64_t spooled_lines_ = 0;
  int64_t spooled_bytes_ = 0;
  int64_t dropped_lines_ = 0;  // over the per-attempt limits
  int64_t invalid_lines_ = 0;
  // Guarded by err_mu_: both reader threads write stderr (the stdout one for lines that are
  // not metric lines and for its own errors).
  std::mutex err_mu_;
  std::string stderr_tail_;
  StderrHint hint_ = StderrHint::kNone;
  std::FILE* stderr_log_ = nullptr;
};

}  // namespace sweepd::agent
