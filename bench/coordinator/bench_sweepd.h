// What the coordinator benchmarks share: child processes (the real sweepd and sweep-workers)
// with their output in a log file, the generated sweep spec, and /proc readings of a process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace sweepd::bench {

// Starts argv[0] (a path) with `argv` and `extra_env` added to this process's environment;
// stdout and stderr go to `log_path`. Exits the benchmark with a message if it cannot.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path,
            const std::vector<std::string>& extra_env = {});

// sweepd on a free loopback port with a fresh database in `dir`; returns its pid and sets
// `address`, or exits the benchmark with the log's path when it does not come up.
pid_t StartSweepd(const std::string& sweepd, const std::string& dir, std::string& address);

// A spec of exactly `jobs` jobs: LoRA ranks x seeds, no evaluation, no budget.
std::string GenerateSpec(const std::string& name, int jobs);

int64_t PeakRssKib(pid_t pid);
// User + system CPU seconds the process has used (/proc/PID/stat fields 14 and 15).
double CpuSeconds(pid_t pid);

}  // namespace sweepd::bench
