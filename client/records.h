// What sweepctl shows, as plain structs: sweeps, jobs, results, metrics, workers. Both
// sources (a coordinator over gRPC, a database file read offline) produce these, so the
// commands and tables never see protobuf or SQL.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweepd::client {

// Job states, spelled as the database stores them.
inline const std::vector<std::string>& JobStates() {
  static const std::vector<std::string> kStates = {"blocked", "queued",    "leased",   "running",
                                                   "succeeded", "failed", "cancelled"};
  return kStates;
}
// True for succeeded, failed and cancelled: a job that can no longer change by itself.
bool IsTerminalState(const std::string& state);

struct SweepInfo {
  std::string name;
  int64_t submitted_ms = 0;
  int64_t total_jobs = 0;
  std::map<std::string, int64_t> counts;  // state -> jobs in it
  int priority = 0;
  bool cancelled = false;

  int64_t Count(const std::string& state) const;
  // Every job is in a terminal state (or the sweep has no jobs).
  bool Finished() const;
};

struct JobInfo {
  std::string job_id;
  std::string sweep;
  std::string kind;  // train | base_eval
  std::string state;
  std::string method;
  std::string track;
  int64_t seed = 0;
  int64_t trainable_params = 0;
  int attempts = 0;
  std::string last_outcome;
  std::string last_error;
  std::string config_json;
  std::vector<std::string> depends_on;
  int64_t updated_ms = 0;
};

struct SweepDetail {
  SweepInfo summary;
  std::vector<JobInfo> jobs;  // in grid order
};

// One succeeded job: its configuration and the trainer's final line.
struct ResultRecord {
  std::string job_id;
  std::string sweep;
  nlohmann::json config;  // JobConfig JSON
  nlohmann::json result;  // the "final" line (docs/metrics.md)
  int64_t finished_ms = 0;
};

// The latest step line of a running job.
struct RunningMetrics {
  std::string job_id;
  int64_t step = 0;
  int64_t total_steps = 0;
  double loss = 0;
  double tokens_per_s = 0;
  std::string worker;
};

struct SweepProgress {
  SweepInfo summary;
  std::vector<RunningMetrics> running;
  bool finished = false;
};

struct LogPoint {
  int64_t seq = 0;
  std::string json;  // one line the trainer printed
};

struct JobLog {
  std::vector<LogPoint> points;  // after the requested seq, in order: one page
  std::string stderr_tail;
  std::string state;
  bool more = false;             // more points follow the page's last
};

struct WorkerInfo {
  std::string worker_id;
  std::string hostname;
  std::string state;
  int64_t last_heartbeat_ms = 0;
  std::vector<std::string> slots;  // "cuda:0 NVIDIA H100 80 GiB"
  std::map<std::string, std::string> labels;
  std::vector<std::string> running_jobs;
};

}  // namespace sweepd::client
