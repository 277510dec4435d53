// `sweep-train run --job JOB.json --workdir DIR [--resume] [--cache DIR]`: reads the job,
// runs it, and turns every failure into the contract's exit status and one stderr line.
// `sweep-train prepare synthetic:NAME... [--cache DIR]`: fills the cache of pre-trained
// synthetic base models ahead of the jobs (the quickstart does it while the services build).
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <new>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/job_config.h"
#include "worker/trainer/commands.h"
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

bool IsOutOfMemory(const std::string& what) {
  return what.find("out of memory") != std::string::npos || what.find("Out of memory") != std::string::npos ||
         what.find("DefaultCPUAllocator: can't allocate") != std::string::npos;
}

// The first line of an exception message (LibTorch appends C++ stack traces).
std::string FirstLine(const std::string& what) { return what.substr(0, what.find('\n')); }

int Run(const RunFlags& flags) {
  std::ifstream in(flags.job);
  if (!in) {
    std::cerr << "sweep-train: " << flags.job << ": cannot open job file" << std::endl;
    return kExitInvalid;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    std::cerr << "sweep-train: " << flags.job << ": not valid JSON (" << e.what() << ")" << std::endl;
    return kExitInvalid;
  }
  Result<JobConfig> config = JobConfigFromJson(j);
  if (!config.ok()) {
    std::cerr << "sweep-train: " << flags.job << ": " << config.status().message() << std::endl;
    return kExitInvalid;
  }
  std::signal(SIGTERM, OnTerminate);
  std::signal(SIGINT, OnTerminate);
  RunOptions options;
  options.job_path = flags.job;
  options.workdir = flags.workdir;
  options.cache_dir = ResolveCacheDir(flags.cache);
  options.resume = flags.resume;
  options.stop = &g_stop;
  MetricsWriter metrics;
  try {
    std::filesystem::create_directories(flags.workdir);
    return RunJob(*config, options, metrics);
  } catch (const std::bad_alloc&) {
    std::cerr << "sweep-train: out of host memory" << std::endl;
    return kExitOutOfMemory;
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    if (IsOutOfMemory(what)) {
      std::cerr << "sweep-train: out of memory: " << FirstLine(what) << std::endl;
      return kExitOutOfMemory;
    }
    std::cerr << "sweep-train: " << FirstLine(what) << std::endl;
    return kExitInvalid;
  } catch (const std::exception& e) {
    if (g_stop.load()) {
      std::cerr << "sweep-train: terminated by signal" << std::endl;
      return kExitTerminated;
    }
    std::cerr << "sweep-train: " << FirstLine(e.what()) << std::endl;
    return kExitInvalid;
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
      return kExitInvalid;
    }
  }
  try {
    for (const std::string& model : flags.models) {
      const auto start = std::chrono::steady_clock::now();
      LoadSyntheticBase(model, cache, [](const std::string& line) { std::cerr << "sweep-train: " << line << std::endl; });
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::cout << nlohmann::json{{"model", model}, {"cache", cache}, {"seconds", s}}.dump() << std::endl;
    }
  } catch (const std::exception& e) {
    std::cerr << "sweep-train prepare: " << FirstLine(e.what()) << std::endl;
    return kExitInvalid;
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
