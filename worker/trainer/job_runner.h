// Runs one job of sweepd: base evaluation, fine-tuning with adapters, final evaluation,
// spectra and trade-off, with checkpoints and resumption.
#pragma once

#include <atomic>
#include <string>

#include "common/job_config.h"
#include "worker/trainer/metrics_writer.h"

namespace sweepd::trainer {

struct RunOptions {
  std::string job_path;  // for error messages about the job's own settings
  std::string workdir;
  std::string cache_dir;  // resolved (ResolveCacheDir)
  bool resume = false;
  const std::atomic<bool>* stop = nullptr;  // set by SIGTERM; the run ends promptly
};

// Runs `config`, printing metrics lines to `metrics`; returns exit_status::kOk or kNonFinite
// (common/contracts.h). Throws InvalidInput for wrong input, other exceptions for faults of
// the attempt (worker/failures.h; ClassifyFailure maps them to exit statuses).
int RunJob(const JobConfig& config, const RunOptions& options, MetricsWriter& metrics);

}  // namespace sweepd::trainer
