// `sweep-train run --job JOB.json --workdir DIR [--resume] [--cache DIR]`: reads the job,
// runs it, and turns every failure into the contract's exit status and one stderr line.
// `sweep-train prepare synthetic:NAME... [--cache DIR]`: fills the cache of pre-trained
// synthetic base models ahead of the jobs (the quickstart does it while the services build).
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/contracts.h"
#include "common/job_config.h"
#include "worker/trainer/commands.h"
#include "worker/trainer/distributed.h"
#include "worker/failures.h"
#include "worker/trainer/failure_exit.h"
#include "worker/trainer/base_model.h"
#include "worker/trainer/job_runner.h"
#include "worker/trainer/synthetic_base.h"

namespace sweepd::trainer {
namespace {

std::atomic<bool> g_stop{false};

void OnTerminate(int) { g_stop.store(true); }

struct RunFlags {
  std::string job;
  std::string workdir = ".";
  std::string cache;
  bool resume = false;
};

// One "invalid input: ..." line and exit_status::kInvalid: the job as written can never run.
int Invalid(const std::string& what) {
  std::cerr << "sweep-train: invalid input: " << what << std::endl;
  return exit_status::kInvalid;
}

int Run(const RunFlags& flags) {
  std::ifstream in(flags.job);
  if (!in) return Invalid(flags.job + ": cannot open job file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    return Invalid(flags.job + ": not valid JSON (" + e.what() + ")");
  }
  Result<JobConfig> config = JobConfigFromJson(j);
  if (!config.ok()) return Invalid(flags.job + ": " + config.status().message());
  std::signal(SIGTERM, OnTerminate);
  std::signal(SIGINT, OnTerminate);
  RankInfo rank;
  try {
    rank = RankFromEnvironment();
  } catch (const InvalidInput& e) {
    return Invalid(e.what());
  }
  if (config->devices > 1 && rank.world == 1) {
    // The launcher: one rank per device, each this command again (distributed.h).
    std::vector<std::string> args = {"run", "--job", flags.job, "--workdir", flags.workdir};
    if (flags.resume) args.push_back("--resume");
    if (!flags.cache.empty()) args.insert(args.end(), {"--cache", flags.cache});
    try {
      std::filesystem::create_directories(flags.workdir);
      return LaunchRanks(static_cast<int>(config->devices), args,
                         (std::filesystem::path(flags.workdir) / ".ranks").string(), &g_stop);
    } catch (const std::exception& e) {
      std::cerr << "sweep-train: crash: " << e.what() << std::endl;
      return exit_status::kCrashed;
    }
  }
  if (rank.world != config->devices) {
    return Invalid(flags.job + ": field 'devices' is " + std::to_string(config->devices) + " but this rank's " +
                   kWorldSizeEnv + " is " + std::to_string(rank.world));
  }
  // Rank r of a CUDA job runs on device r of those the launcher was given (r modulo their
  // count where there are fewer: ranks then share a device, over gloo; a check, not a speed-up).
  if (rank.world > 1 && config->device.rfind("cuda", 0) == 0 && torch::cuda::is_available()) {
    config->device = "cuda:" + std::to_string(rank.rank % std::max<int64_t>(1, torch::cuda::device_count()));
  }
  RunOptions options;
  options.job_path = flags.job;
  options.workdir = flags.workdir;
  options.resume = flags.resume;
  options.stop = &g_stop;
  MetricsWriter metrics;
  try {
    options.cache_dir = ResolveCacheDir(flags.cache);
    std::filesystem::create_directories(flags.workdir);
    if (rank.world > 1) DataParallel::Current().Init(rank, ParseDevice(config->device));
    return RunJob(*config, options, metrics);
  } catch (...) {
    const FailureExit end = ClassifyFailure(std::current_exception(), g_stop.load());
    std::cerr << "sweep-train: " << end.line << std::endl;
    return end.status;
  }
}

struct PrepareFlags {
  std::vector<std::string> models;
  std::string cache;
};

int Prepare(const PrepareFlags& flags) {
  const std::string cache = ResolveCacheDir(flags.cache);
  for (const std::string& model : flags.models) {
    if (!IsSyntheticModel(model)) {
      std::cerr << "sweep-train prepare: " << model
                << ": only synthetic:NAME base models are prepared (checkpoint folders are read as they are)"
                << std::endl;
      return exit_status::kInvalid;
    }
  }
  try {
    for (const std::string& model : flags.models) {
      const auto start = std::chrono::steady_clock::now();
      LoadSyntheticBase(model, cache, [](const std::string& line) { std::cerr << "sweep-train: " << line << std::endl; });
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::cout << nlohmann::json{{"model", model}, {"cache", cache}, {"seconds", s}}.dump() << std::endl;
    }
  } catch (...) {
    const FailureExit end = ClassifyFailure(std::current_exception(), false);
    std::cerr << "sweep-train prepare: " << end.line << std::endl;
    return end.status;
  }
  return 0;
}

}  // namespace

void AddPrepareCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<PrepareFlags>();
  CLI::App* prepare = app.add_subcommand(
      "prepare", "Pre-train synthetic base models into the cache now, before any job needs them");
  prepare->add_option("models", flags->models, "synthetic:NAME (e.g. synthetic:tiny)")->required();
  prepare->add_option("--cache", flags->cache,
                      "cache of pre-trained synthetic base models (default $SWEEPD_CACHE, else ~/.cache/sweepd)");
  prepare->callback([flags, exit_code] { *exit_code = Prepare(*flags); });
}

void AddRunCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<RunFlags>();
  CLI::App* run = app.add_subcommand("run", "Run one job: fine-tune, evaluate, print metrics as JSON lines");
  run->add_option("--job", flags->job, "job configuration (JSON, docs/job-config.md)")->required()->check(CLI::ExistingFile);
  run->add_option("--workdir", flags->workdir, "where checkpoints go (DIR/checkpoints)");
  run->add_flag("--resume", flags->resume, "continue from the latest checkpoint in the workdir");
  run->add_option("--cache", flags->cache,
                  "cache of pre-trained synthetic base models (default $SWEEPD_CACHE, else ~/.cache/sweepd)");
  run->callback([flags, exit_code] { *exit_code = Run(*flags); });
}

}  // namespace sweepd::trainer
