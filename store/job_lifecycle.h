// The life of a job, decided here and only here: when a waiting job becomes queued,
// blocked or failed (MakeReady), what an ended attempt does to its job (SettleJob: succeed,
// retry with back-off, fail for good, cancel), and leases that ran out (ExpireAttempts).
// Each function runs inside the caller's write transaction (the store's writer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/contracts.h"
#include "common/status.h"
#include "store/database.h"
#include "store/records.h"

namespace sweepd::store {

// Retry policy for failed attempts: the wait before attempt n+1 is
// min(max_ms, base_ms * 2^(failures-1)).
struct BackoffPolicy {
  int64_t base_ms = 5000;
  int64_t max_ms = 10 * 60 * 1000;
  int64_t DelayAfter(int failures) const;
};

// True for the outcomes that use up one of the job's max_attempts.
bool CountsAsFailure(Outcome outcome);

Status SetJobState(Database& db, const std::string& job_id, JobState state, int64_t now_ms);

// Puts a job that is about to wait (new, revived, retried) into queued (its dependencies
// all succeeded), blocked (some still run) or failed (one failed for good).
Status MakeReady(Database& db, const std::string& job_id, int64_t now_ms);

// Decides the job's state after an attempt ended with `outcome` (its attempts row is
// already updated), and lets the jobs waiting on it re-check their dependencies.
Status SettleJob(Database& db, const std::string& job_id, Outcome outcome, bool cancel_requested,
                 const std::string& error, const BackoffPolicy& backoff, int64_t now_ms);

// Ends the attempts whose lease ran out before `now_ms` (lease_expired, retried like a
// crash); returns their ids.
Result<std::vector<std::string>> ExpireAttempts(Database& db, const BackoffPolicy& backoff,
                                                int64_t now_ms);

}  // namespace sweepd::store
