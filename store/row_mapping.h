// Row mapping: which column of sweepd's tables (schema/*.sql) holds which field of the
// store's records, and the loads every part of the store shares. Internal to store/.
#pragma once

#include <string>

#include "common/status.h"
#include "store/database.h"
#include "store/records.h"

namespace sweepd::store {

// The columns ReadJob expects, for "SELECT " SWEEPD_JOB_COLUMNS " FROM jobs j ...".
#define SWEEPD_JOB_COLUMNS                                                           \
  "j.job_id, j.kind, j.config_json, j.method, j.track, j.seed, j.trainable_params, " \
  "j.device_kind, j.memory_bytes, j.priority, j.state, j.attempts, j.max_attempts, " \
  "j.not_before_ms, j.last_outcome, j.last_error, j.created_ms, j.updated_ms"
JobRecord ReadJob(const Query& q);

// The columns ReadSweep expects.
#define SWEEPD_SWEEP_COLUMNS "name, spec_yaml, spec_path, priority, cancelled, submitted_ms"
SweepRecord ReadSweep(const Query& q);

// The columns ReadWorker expects.
#define SWEEPD_WORKER_COLUMNS                                                                 \
  "worker_id, hostname, version, slots_json, labels_json, state, registered_ms, " \
  "last_heartbeat_ms"
WorkerRecord ReadWorker(const Query& q);
// The JSON the workers table keeps a worker's slots and labels in.
std::string SlotsJson(const WorkerRecord& worker);
std::string LabelsJson(const WorkerRecord& worker);

// The job with its dependencies and first sweep; NotFound names the id.
Result<JobRecord> LoadJob(Database& db, const std::string& job_id);
// The sweep's job counts by state (SweepRecord::counts, total_jobs).
Status LoadCounts(Database& db, SweepRecord& sweep);
// NotFound naming the sweep when there is none by that name.
Status SweepExists(Database& db, const std::string& name);

// An attempts row, as the life-cycle rules need it.
struct AttemptRow {
  std::string job_id;
  std::string state;  // leased | running | finished | expired
  int64_t fencing_token = 0;
  bool cancel_requested = false;
  int64_t metrics_through = 0;
  std::string outcome;
};
Result<AttemptRow> LoadAttempt(Database& db, const std::string& attempt_id);
// The attempt, if `token` still holds its lease; FailedPrecondition otherwise (fencing).
Result<AttemptRow> LoadLiveAttempt(Database& db, const std::string& attempt_id, int64_t token);

}  // namespace sweepd::store
