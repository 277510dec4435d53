// Store: sweepd's state in SQLite and its public API. Every state change -- blocked ->
// queued when dependencies succeed, queued -> leased -> running -> succeeded | failed |
// cancelled, retries with backoff, expired leases -- happens inside one BEGIN IMMEDIATE
// transaction of a method here, by the rules of store/job_lifecycle.h. Times are passed in
// (Unix ms) so tests drive the clock.
//
// Threads: every method may be called from any thread. Writing methods hand their work to
// the CommitQueue: one writer thread and connection runs them, many per transaction (group
// commit), and the method returns (or calls its reply) once its writes are committed. The
// writer keeps a JobQueueIndex of the leasable jobs in step with the rows it writes
// (store/queue_index_sync.cc), so a lease does not scan the jobs table. Reading methods
// borrow a connection from a ReaderPool for the one read (StoreReader), give it back when
// it ends, and see what was committed.
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

#include "common/contracts.h"
#include "common/metric_line.h"
#include "common/status.h"
#include "spec/sweep_spec.h"
#include "store/audit.h"
#include "store/commit_queue.h"
#include "store/database.h"
#include "store/job_lifecycle.h"
#include "store/job_queue_index.h"
#include "store/reader_pool.h"
#include "store/records.h"
#include "store/store_reader.h"

namespace sweepd::store {

struct AddSweepResult {
  int64_t jobs_total = 0;
  int64_t jobs_new = 0;
  int64_t jobs_reused = 0;
};

struct LeaseRequest {
  std::string worker_id;
  int slot_index = 0;
  std::string device_kind;
  int64_t free_memory_bytes = 0;
  int64_t free_devices = 1;  // devices the worker can give one job (resources.gpus_per_job)
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
  // The line read once (MetricLine::Read), by the scheduler or else by the store; a line
  // that is not a metric line is stored with no type and no step.
  std::optional<Result<MetricLine>> line = {};
};

struct MetricsStored {
  int64_t stored_through = 0;  // every point up to this seq is stored
  std::string job_id;
};

struct FinishReport {
  std::string attempt_id;
  int64_t fencing_token = 0;
  Outcome outcome = Outcome::kCrashed;
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
  // Each write is answered through `reply` once committed (for gRPC's callback API: no
  // thread waits for the commit).
  // Registers a worker; `worker_id` non-empty re-registers a known id (after a restart of
  // either side). Answers the worker's id.
  void RegisterWorkerAsync(WorkerRecord worker, int64_t now_ms, Reply<std::string> reply);
  void HeartbeatAsync(HeartbeatReport report, int64_t now_ms, int64_t lease_ms,
                      Reply<HeartbeatResult> reply);
  // The best queued job the slot can run, leased to it; no lease when none fits now.
  // NotFound when the worker is unknown (it must register again).
  void LeaseJobAsync(LeaseRequest request, int64_t now_ms, int64_t lease_ms,
                     Reply<LeaseOutcome> reply);
  void MarkStartedAsync(std::string attempt_id, int64_t fencing_token, int64_t now_ms,
                        StatusReply reply);
  // Stores points once each ((attempt_id, seq) is unique) and answers the highest seq up to
  // which every point is stored. FailedPrecondition when the token no longer holds the lease.
  void StoreMetricsAsync(std::string attempt_id, int64_t fencing_token,
                         std::vector<MetricPointIn> points, int64_t now_ms,
                         Reply<MetricsStored> reply);
  // Ends an attempt and decides its job's next state (retry, fail, succeed, cancel).
  // FailedPrecondition for a stale token; Unavailable while metrics up to
  // report.last_metric_seq are not all stored (send them, then finish again). A repeated
  // finish (already stored) answers an AttemptEnd with an empty job_id.
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
  // The worker the attempt was leased to (sweepd confines workers to their own attempts).
  Result<std::string> WorkerOfAttempt(const std::string& attempt_id);

  // --- Audit trail (store/audit.h) ---
  // Appends `entry` once committed; RecordAuditAsync answers `reply` on the writer thread.
  Status RecordAudit(AuditEntry entry);
  void RecordAuditAsync(AuditEntry entry, StatusReply reply);
  Result<std::vector<AuditEntry>> ListAudit(int64_t since_ms);

  // Compares the writer's in-memory queue index with one rebuilt from the database now;
  // Internal, naming the first difference, when they disagree (tests and diagnostics).
  Status CheckQueueIndex();

 private:
  explicit Store(std::string path)
      : path_(std::move(path)), readers_(path_, kIdleReaders, kMaxReaders) {}
  // Read connections kept open between reads; up to kMaxReaders while many reads run at once.
  static constexpr size_t kIdleReaders = 16;
  static constexpr size_t kMaxReaders = 64;
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
  ReaderPool readers_;

  JobQueueIndex index_;                // writer thread only
  bool index_stale_ = false;           // writer thread only
  std::vector<int64_t> changed_jobs_;  // jobs rowids; writer thread only
  std::vector<int64_t> changed_sweeps_;
  std::vector<int64_t> changed_sweep_jobs_;
  std::unique_ptr<CommitQueue> writer_;  // last: stopped before the members it uses go
};

}  // namespace sweepd::store
