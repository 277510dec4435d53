// The job life-cycle rules; see job_lifecycle.h and docs/coordinator.md.
#include "store/job_lifecycle.h"

#include <algorithm>
#include <tuple>

namespace sweepd::store {
namespace {

// The state a waiting job should be in given its dependencies: queued when all succeeded,
// failed when one failed for good, else blocked.
Result<JobState> ReadinessOf(Database& db, const std::string& job_id) {
  Query q = db.Prepare(
      "SELECT d.state FROM job_deps jd JOIN jobs d ON d.job_id = jd.depends_on WHERE jd.job_id = "
      "?");
  q.Bind(1, job_id);
  JobState result = JobState::kQueued;
  while (q.Step()) {
    const std::string s = q.Text(0);
    if (s == JobStateName(JobState::kFailed)) return JobState::kFailed;
    if (s != JobStateName(JobState::kSucceeded)) result = JobState::kBlocked;
  }
  SWEEPD_RETURN_IF_ERROR(q.status());
  return result;
}

// Dependents of `job_id` that wait on it re-check their dependencies (after it succeeded
// or failed for good).
Status SettleDependents(Database& db, const std::string& job_id, int64_t now_ms) {
  std::vector<std::string> waiting;
  {
    Query q = db.Prepare(
        "SELECT j.job_id FROM job_deps jd JOIN jobs j ON j.job_id = jd.job_id "
        "WHERE jd.depends_on = ? AND j.state = 'blocked'");
    q.Bind(1, job_id);
    while (q.Step()) waiting.push_back(q.Text(0));
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  for (const std::string& id : waiting) SWEEPD_RETURN_IF_ERROR(MakeReady(db, id, now_ms));
  return Status::Ok();
}

}  // namespace

int64_t BackoffPolicy::DelayAfter(int failures) const {
  int64_t delay = base_ms;
  for (int i = 1; i < failures && delay < max_ms; ++i) delay *= 2;
  return std::min(delay, max_ms);
}

bool CountsAsFailure(Outcome o) {
  return o != Outcome::kSucceeded && o != Outcome::kCancelled && o != Outcome::kHandedBack;
}

Status SetJobState(Database& db, const std::string& job_id, JobState state, int64_t now_ms) {
  return db.Prepare("UPDATE jobs SET state = ?, updated_ms = ? WHERE job_id = ?")
      .Bind(1, std::string(JobStateName(state)))
      .Bind(2, now_ms)
      .Bind(3, job_id)
      .Run();
}

Status MakeReady(Database& db, const std::string& job_id, int64_t now_ms) {
  Result<JobState> ready = ReadinessOf(db, job_id);
  if (!ready.ok()) return ready.status();
  if (*ready == JobState::kFailed) {
    return db
        .Prepare(
            "UPDATE jobs SET state = 'failed', last_outcome = ?, last_error = "
            "'its base-model evaluation failed; retry the sweep with sweepctl retry', updated_ms = "
            "? WHERE job_id = ?")
        .Bind(1, std::string(OutcomeName(Outcome::kDependencyFailed)))
        .Bind(2, now_ms)
        .Bind(3, job_id)
        .Run();
  }
  return db.Prepare("UPDATE jobs SET state = ?, not_before_ms = 0, updated_ms = ? WHERE job_id = ?")
      .Bind(1, std::string(JobStateName(*ready)))
      .Bind(2, now_ms)
      .Bind(3, job_id)
      .Run();
}

Status SettleJob(Database& db, const std::string& job_id, Outcome outcome, bool cancel_requested,
                 const std::string& error, const BackoffPolicy& backoff, int64_t now_ms) {
  auto finish = [&](JobState state, int64_t not_before) {
    return db
        .Prepare(
            "UPDATE jobs SET state = ?, last_outcome = ?, last_error = ?, not_before_ms = ?, "
            "updated_ms = ? WHERE job_id = ?")
        .Bind(1, std::string(JobStateName(state)))
        .Bind(2, std::string(OutcomeName(outcome)))
        .Bind(3, error)
        .Bind(4, not_before)
        .Bind(5, now_ms)
        .Bind(6, job_id)
        .Run();
  };
  if (outcome == Outcome::kSucceeded) {
    SWEEPD_RETURN_IF_ERROR(finish(JobState::kSucceeded, 0));
    return SettleDependents(db, job_id, now_ms);
  }
  if (cancel_requested) return finish(JobState::kCancelled, 0);
  if (!CountsAsFailure(outcome)) return finish(JobState::kQueued, 0);  // handed back
  if (outcome == Outcome::kInvalidConfig) {
    SWEEPD_RETURN_IF_ERROR(finish(JobState::kFailed, 0));
    return SettleDependents(db, job_id, now_ms);
  }
  int64_t failures = 0, max_attempts = 0;
  {
    // The outcomes CountsAsFailure leaves out, as stored.
    Query q = db.Prepare(
        "SELECT (SELECT COUNT(*) FROM attempts a WHERE a.job_id = j.job_id AND a.number > "
        "j.attempts_base AND a.outcome NOT IN ('', ?, ?, ?)), j.max_attempts "
        "FROM jobs j WHERE j.job_id = ?");
    q.Bind(1, std::string(OutcomeName(Outcome::kSucceeded)))
        .Bind(2, std::string(OutcomeName(Outcome::kCancelled)))
        .Bind(3, std::string(OutcomeName(Outcome::kHandedBack)))
        .Bind(4, job_id);
    if (q.Step()) failures = q.Int(0), max_attempts = q.Int(1);
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  if (failures >= max_attempts) {
    SWEEPD_RETURN_IF_ERROR(finish(JobState::kFailed, 0));
    return SettleDependents(db, job_id, now_ms);
  }
  return finish(JobState::kQueued, now_ms + backoff.DelayAfter(static_cast<int>(failures)));
}

Result<std::vector<std::string>> ExpireAttempts(Database& db, const BackoffPolicy& backoff,
                                                int64_t now_ms) {
  std::vector<std::tuple<std::string, std::string, bool>> expired;
  {
    Query q = db.Prepare(
        "SELECT attempt_id, job_id, cancel_requested FROM attempts "
        "WHERE state IN ('leased', 'running') AND lease_expires_ms < ?");
    q.Bind(1, now_ms);
    while (q.Step()) expired.emplace_back(q.Text(0), q.Text(1), q.Int(2) != 0);
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  std::vector<std::string> ids;
  for (const auto& [attempt_id, job_id, cancel] : expired) {
    SWEEPD_RETURN_IF_ERROR(
        db.Prepare(
              "UPDATE attempts SET state = 'expired', outcome = ?, finished_ms = ? "
              "WHERE attempt_id = ?")
            .Bind(1, std::string(OutcomeName(Outcome::kLeaseExpired)))
            .Bind(2, now_ms)
            .Bind(3, attempt_id)
            .Run());
    SWEEPD_RETURN_IF_ERROR(SettleJob(db, job_id, Outcome::kLeaseExpired, cancel,
                                     "lease expired: the worker stopped heartbeating", backoff,
                                     now_ms));
    ids.push_back(attempt_id);
  }
  return ids;
}

}  // namespace sweepd::store
