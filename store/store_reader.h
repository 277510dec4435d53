// StoreReader: every question about sweepd's database that changes nothing -- sweeps, jobs,
// results, logs, progress, workers. sweepd's store asks it on the calling thread's
// connection; `sweepctl --db` opens a database file read-only through it, so the offline
// client reads with the same queries as the coordinator (optuna's storages follow the
// same split: one module knows the tables, the CLI reads through it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/audit.h"
#include "store/database.h"
#include "store/records.h"

namespace sweepd::store {

class StoreReader {
 public:
  // Opens the database file at `path` read-only (Database::OpenReadOnly) and checks its
  // schema version: a database of a newer sweepd is refused rather than misread, naming
  // `program` ("var/sweepd.db has schema version 3; this sweepctl reads up to 2").
  // NotFound when there is no file; Unavailable when it is not a sweepd database.
  // `follow_writers`: the reader will wait for sweepd's commits (Database::OpenReadOnly).
  static Result<std::unique_ptr<StoreReader>> Open(const std::string& path,
                                                   std::string_view program,
                                                   bool follow_writers = false);
  // Reads through `db`, which must outlive the reader (the store's own connections).
  explicit StoreReader(Database& db) : db_(db) {}

  Result<std::vector<SweepRecord>> ListSweeps();
  Result<SweepRecord> GetSweep(const std::string& name);
  // The sweep's jobs in grid order; with `since_ms`, only those updated after it.
  Result<std::vector<JobRecord>> SweepJobs(const std::string& name, int64_t since_ms = -1);
  Result<JobRecord> GetJob(const std::string& job_id);
  // Results of the sweep's jobs in grid order; every sweep's when `sweep` is empty (a job
  // shared by sweeps once, under the first of them by name).
  Result<std::vector<ResultRecord>> QueryResults(const std::string& sweep);
  // The job's state and the metric points of its latest attempt after `after_seq`.
  Result<JobLog> GetJobLog(const std::string& job_id, int64_t after_seq);
  // The latest step line of each running job of the sweep, in grid order.
  Result<std::vector<RunningProgress>> RunningProgressOf(const std::string& sweep);
  Result<std::vector<WorkerRecord>> ListWorkers();
  // Jobs queued whose backoff has passed.
  Result<int64_t> QueueDepth(int64_t now_ms);
  // The attempt's job id; NotFound for an unknown attempt.
  Result<std::string> JobOfAttempt(const std::string& attempt_id);
  // The worker the attempt was leased to; NotFound for an unknown attempt.
  Result<std::string> WorkerOfAttempt(const std::string& attempt_id);
  // The audit trail from `since_ms` on (ReadAudit); FailedPrecondition on a database older
  // than the trail (schema version below kAuditSchemaVersion, not yet upgraded by sweepd).
  Result<std::vector<AuditEntry>> Audit(int64_t since_ms);

 private:
  explicit StoreReader(std::unique_ptr<Database> owned) : owned_(std::move(owned)), db_(*owned_) {}

  std::unique_ptr<Database> owned_;  // set when Open opened the file; null when borrowing
  Database& db_;
};

}  // namespace sweepd::store
