// Store: sweepd's state in SQLite, and the one place where the life of a job is decided
// (style rule 2). Every state change -- blocked -> queued when dependencies succeed,
// queued -> leased -> running -> succeeded | failed | cancelled, retries with backoff,
// expired leases -- happens inside one BEGIN IMMEDIATE transaction of a method here.
// Times are passed in (Unix ms) so tests drive the clock.
//
// Threads: every method may be called from any thread. Writing methods hand their work to
// the CommitQueue: one writer thread and connection runs them, many per transaction (group
// commit), and the method returns once its writes are committed. The writer keeps a
// JobQueueIndex of the leasable jobs in step with the rows it writes (SQLite's update hook
// names every changed jobs/sweeps/sweep_jobs row; each is re-read after its work), so a
// lease does not scan the jobs table. Reading methods use a connection of the calling
// thread and see what was committed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "server/commit_queue.h"
#include "server/database.h"
#include "server/job_queue_index.h"
#include "spec/sweep_spec.h"

namespace sweepd::server {

// Job states, as stored ("blocked", "queued", ...).
enum class JobState { kBlocked, kQueued, kLeased, kRunning, kSucceeded, kFailed, kCancelled };
const char* JobStateName(JobState state);
std::optional<JobState> ParseJobState(const std::string& name);
bool IsTerminal(JobState state);

// How an attempt ended (attempts.outcome): succeeded, out_of_memory, non_finite_loss,
// crashed, timed_out, cancelled, handed_back, invalid_config, lease_expired.
namespace outcome {
inline constexpr const char* kSucceeded = "succeeded";
inline constexpr const char* kOutOfMemory = "out_of_memory";
inline constexpr const char* kNonFiniteLoss = "non_finite_loss";
inline constexpr const char* kCrashed = "crashed";
inline constexpr const char* kTimedOut = "timed_out";
inline constexpr const char* kCancelled = "cancelled";
inline constexpr const char* kHandedBack = "handed_back";
inline constexpr const char* kInvalidConfig = "invalid_config";
inline constexpr const char* kLeaseExpired = "lease_expired";
inline constexpr const char* kDependencyFailed = "dependency_failed";
}  // namespace outcome

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
  std::string last_outcome;
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

struct AddSweepResult {
  int64_t jobs_total = 0;
  int64_t jobs_new = 0;
  int64_t jobs_reused = 0;
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

struct LeaseRequest {
  std::string worker_id;
  int slot_index = 0;
  std::string device_kind;
  int64_t free_memory_bytes = 0;
};

struct Lease {
  JobRecord job;  // config_json carries base_scores filled from the dependency
  std::string attempt_id;
  int64_t fencing_token = 0;
  int attempt_number = 0;
  int64_t expires_ms = 0;
  int64_t queued_since_ms = 0;  // when the job last became eligible (dispatch latency)
};

// A worker's heartbeat: the attempts it runs, each with its token.
struct HeartbeatReport {
  std::string worker_id;
  std::vector<std::pair<std::string, int64_t>> running;  // (attempt_id, fencing_token)
  bool draining = false;
};

struct HeartbeatResult {
  bool known_worker = true;  // false: the worker must register again
  std::vector<std::string> cancel_attempts;
  std::vector<std::string> lost_attempts;
  int64_t lease_expires_ms = 0;
};

struct MetricPointIn {
  int64_t seq = 0;
  std::string json;
  // True when the caller has already read the line's "type" and integer "step" below (the
  // scheduler does, for /metrics); otherwise the store reads them from `json`.
  bool read = false;
  std::string type = {};
  std::optional<int64_t> step = {};
};

// Reads a metric line's top-level "type" (string) and "step" (integer) into `point`; both stay
// empty when the line is not a JSON object.
void ReadMetricLine(MetricPointIn& point);

struct MetricsStored {
  int64_t stored_through = 0;  // every point up to this seq is stored
  std::string job_id;
};

struct FinishReport {
  std::string attempt_id;
  int64_t fencing_token = 0;
  std::string outcome;  // one of outcome::*
  int exit_code = 0;
  int signal = 0;
  std::string stderr_tail;
  std::string result_json;
  int64_t last_metric_seq = 0;
};

// How FinishAttempt left the job.
struct AttemptEnd {
  std::string job_id;
  JobState job_state = JobState::kQueued;
};

// What LeaseJobAsync answers.
struct LeaseOutcome {
  std::optional<Lease> lease;
  // Without a lease: when the earliest backed-off job that fits becomes eligible (0: none).
  int64_t next_eligible_ms = 0;
};

// The answer to an asynchronous write: called once, on the store's writer thread, after the
// COMMIT that holds the write (or with the error that kept it out). It must be short and
// must not wait for another write of the store (that write would wait for it).
template <typename T>
using Reply = std::function<void(Result<T>)>;
using StatusReply = std::function<void(Status)>;

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
  std::vector<StoredPoint> points;  // of the job's latest attempt
  std::string stderr_tail;
};

// The latest "step" line of a running job.
struct RunningProgress {
  std::string job_id;
  std::string worker_id;
  std::string step_json;
};

// Retry policy for failed attempts: the wait before attempt n+1 is
// min(max_ms, base_ms * 2^(failures-1)).
struct BackoffPolicy {
  int64_t base_ms = 5000;
  int64_t max_ms = 10 * 60 * 1000;
  int64_t DelayAfter(int failures) const;
};

class Store : private CommitQueue::Observer {
 public:
  // Opens the database at `path` and applies the embedded migrations.
  static Result<std::unique_ptr<Store>> Open(const std::string& path, int64_t now_ms);
  ~Store();

  // --- Sweeps (SweepService) ---
  // Stores the sweep and its jobs. Jobs already present (same id) are reused; a job of an
  // earlier cancelled sweep comes back to life. The same name with a different spec is
  // refused (AlreadyExists); the same spec again is accepted and changes nothing.
  Result<AddSweepResult> AddSweep(const spec::ExpandedSweep& sweep, int64_t now_ms);
  Result<std::vector<SweepRecord>> ListSweeps();
  Result<SweepRecord> GetSweep(const std::string& name);
  Result<std::vector<JobRecord>> SweepJobs(const std::string& name);
  Result<JobRecord> GetJob(const std::string& job_id);
  // Cancels the sweep's jobs that no other live sweep needs: waiting ones at once,
  // running ones by asking their workers (HeartbeatResult.cancel_attempts).
  Result<int64_t> CancelSweep(const std::string& name, int64_t now_ms);
  // Requeues failed and cancelled jobs of the sweep (all, or those in `job_ids`) with a
  // fresh attempt budget.
  Result<int64_t> RetryJobs(const std::string& name, const std::vector<std::string>& job_ids,
                            int64_t now_ms);
  Result<std::vector<ResultRecord>> QueryResults(const std::string& sweep);
  Result<JobLog> GetJobLog(const std::string& job_id, int64_t after_seq);
  Result<std::vector<RunningProgress>> RunningProgressOf(const std::string& sweep);
  // Jobs of the sweep updated after `since_ms` (for WatchSweep's change events).
  Result<std::vector<JobRecord>> SweepJobsChangedSince(const std::string& name, int64_t since_ms);

  // --- Workers (WorkerService) ---
  // Registers a worker; `worker_id` non-empty re-registers a known id (after a restart of
  // either side). Returns the worker's id.
  Result<std::string> RegisterWorker(const WorkerRecord& worker, int64_t now_ms);
  Result<HeartbeatResult> Heartbeat(const HeartbeatReport& report, int64_t now_ms,
                                    int64_t lease_ms);
  // The best queued job the slot can run, leased to it; nullopt when none fits now.
  // NotFound when the worker is unknown (it must register again).
  Result<std::optional<Lease>> LeaseJob(const LeaseRequest& request, int64_t now_ms,
                                        int64_t lease_ms);
  Status MarkStarted(const std::string& attempt_id, int64_t fencing_token, int64_t now_ms);
  // Stores points once each ((attempt_id, seq) is unique) and returns the highest seq up to
  // which every point is stored. FailedPrecondition when the token no longer holds the lease.
  Result<MetricsStored> StoreMetrics(const std::string& attempt_id, int64_t fencing_token,
                                     const std::vector<MetricPointIn>& points, int64_t now_ms);
  // Ends an attempt and decides its job's next state (retry, fail, succeed, cancel).
  // FailedPrecondition for a stale token; Unavailable while metrics up to
  // report.last_metric_seq are not all stored (send them, then finish again).
  // `ended` (optional) receives the job and the state it was left in.
  Status FinishAttempt(const FinishReport& report, const BackoffPolicy& backoff, int64_t now_ms,
                       AttemptEnd* ended = nullptr);
  // The same writes, answered through `reply` instead of waiting (for gRPC's callback API:
  // no thread waits for the commit).
  void RegisterWorkerAsync(WorkerRecord worker, int64_t now_ms, Reply<std::string> reply);
  void HeartbeatAsync(HeartbeatReport report, int64_t now_ms, int64_t lease_ms,
                      Reply<HeartbeatResult> reply);
  void LeaseJobAsync(LeaseRequest request, int64_t now_ms, int64_t lease_ms,
                     Reply<LeaseOutcome> reply);
  void MarkStartedAsync(std::string attempt_id, int64_t fencing_token, int64_t now_ms,
                        StatusReply reply);
  void StoreMetricsAsync(std::string attempt_id, int64_t fencing_token,
                         std::vector<MetricPointIn> points, int64_t now_ms,
                         Reply<MetricsStored> reply);
  // A repeated finish (already stored) answers an AttemptEnd with an empty job_id.
  void FinishAttemptAsync(FinishReport report, BackoffPolicy backoff, int64_t now_ms,
                          Reply<AttemptEnd> reply);
  // Ends attempts whose lease ran out before `now_ms`; their jobs are retried like a
  // crash. Returns the expired attempt ids.
  Result<std::vector<std::string>> ExpireLeases(const BackoffPolicy& backoff, int64_t now_ms);
  // Copies committed WAL frames into the database file (PASSIVE: never waits for or blocks
  // the writer), so the writer's commits do not pay for checkpoints.
  Status CheckpointWal();
  // Marks workers silent for longer than `silence_ms` as lost.
  Status MarkLostWorkers(int64_t now_ms, int64_t silence_ms);
  Result<std::vector<WorkerRecord>> ListWorkers();
  // Jobs queued whose backoff has passed (the scheduler's queue depth).
  Result<int64_t> QueueDepth(int64_t now_ms);
  // The attempt's job id; NotFound for an unknown attempt.
  Result<std::string> JobOfAttempt(const std::string& attempt_id);

  // Compares the writer's in-memory queue index with one rebuilt from the database now;
  // Internal, naming the first difference, when they disagree (tests and diagnostics).
  Status CheckQueueIndex();

 private:
  explicit Store(std::string path) : path_(std::move(path)) {}
  // This thread's connection, opened on first use.
  Result<Database*> Connection();
  // Runs `body` on the writer inside a group-committed transaction; returns after COMMIT.
  template <typename T>
  Result<T> Write(const std::function<Result<T>(Database&)>& body);
  Status WriteStatus(const CommitQueue::Work& body);
  template <typename T>
  void WriteAsync(std::function<Result<T>(Database&)> body, Reply<T> reply);
  Result<std::optional<Lease>> LeaseIn(Database& db, const LeaseRequest& r, int64_t now_ms,
                                       int64_t lease_ms);

  // Writer thread only: the queue index and the rows changed since it was last refreshed.
  void NoteRowChange(const char* table, int64_t rowid);
  Status RefreshIndex(Database& db);
  Status RebuildIndex(Database& db, JobQueueIndex& index);
  // The index, rebuilt first if a refresh failed.
  Result<JobQueueIndex*> Index(Database& db);
  void WorkEnded(Database& db) override;
  void BatchEnded(Database& db, bool committed) override;

  std::string path_;
  std::mutex mu_;  // guards connections_
  std::map<std::thread::id, std::unique_ptr<Database>> connections_;

  JobQueueIndex index_;                // writer thread only
  bool index_stale_ = false;           // writer thread only
  std::vector<int64_t> changed_jobs_;  // jobs rowids; writer thread only
  std::vector<int64_t> changed_sweeps_;
  std::vector<int64_t> changed_sweep_jobs_;
  std::unique_ptr<CommitQueue> writer_;  // last: stopped before the members it uses go
};

}  // namespace sweepd::server
