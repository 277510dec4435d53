// The rows of sweepd's database as plain structs: jobs, sweeps, workers, results, metric
// points. The store writes them and the store reader reads them (sweepd's services and
// `sweepctl --db` alike); only store/row_mapping.cc knows which column holds what.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sweepd::store {

// Job states, as stored ("blocked", "queued", ...).
enum class JobState { kBlocked, kQueued, kLeased, kRunning, kSucceeded, kFailed, kCancelled };
const char* JobStateName(JobState state);
std::optional<JobState> ParseJobState(const std::string& name);
bool IsTerminal(JobState state);

struct JobRecord {
  std::string job_id;
  std::string kind;
  std::string config_json;
  std::string method;
  std::string track;
  int64_t seed = 0;
  int64_t trainable_params = 0;
  std::string device_kind;
  int64_t memory_bytes = 0;
  int priority = 0;
  JobState state = JobState::kQueued;
  int attempts = 0;
  int max_attempts = 3;
  int64_t not_before_ms = 0;
  std::string last_outcome;  // an OutcomeName (common/contracts.h), or empty
  std::string last_error;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  std::vector<std::string> depends_on;
  std::string sweep;  // the first sweep (by name) that includes the job
};

struct SweepRecord {
  std::string name;
  std::string spec_yaml;
  std::string spec_path;
  int priority = 0;
  bool cancelled = false;
  int64_t submitted_ms = 0;
  int64_t total_jobs = 0;
  std::map<JobState, int64_t> counts;
  // True when no job of the sweep can change any more (all terminal).
  bool finished() const;
};

struct SlotInfo {
  int index = 0;
  std::string device_kind;
  std::string device_name;
  int64_t memory_bytes = 0;
  std::string compute_capability;
};

struct WorkerRecord {
  std::string worker_id;
  std::string hostname;
  std::string version;
  std::vector<SlotInfo> slots;
  std::map<std::string, std::string> labels;
  std::string state;  // alive | draining | lost | gone
  int64_t registered_ms = 0;
  int64_t last_heartbeat_ms = 0;
  std::vector<std::string> running_jobs;
};

struct ResultRecord {
  std::string job_id;
  std::string sweep;
  std::string config_json;
  std::string result_json;
  int64_t finished_ms = 0;
};

struct StoredPoint {
  int64_t seq = 0;
  std::string json;
};

struct JobLog {
  JobState state = JobState::kQueued;
  std::vector<StoredPoint> points;  // of the job's latest attempt, one page (kJobLogPageBytes)
  std::string stderr_tail;
  bool more = false;                // points after the last one are left for the next page
};

// A page of a job's metric points holds at most this many bytes of JSON (at least one point), so
// that a long job's log fits gRPC's 4 MB message limit and nobody reads it all at once.
inline constexpr size_t kJobLogPageBytes = 1 << 20;

// The latest "step" line of a running job.
struct RunningProgress {
  std::string job_id;
  std::string worker_id;
  std::string step_json;
};

}  // namespace sweepd::store
