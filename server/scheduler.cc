// Scheduling policy and lease housekeeping; state changes themselves are the store's.
#include "server/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

namespace sweepd::server {

namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Scheduler::Scheduler(Store& store, SchedulerOptions options, Clock clock,
                     CoordinatorMetrics* metrics)
    : store_(store), options_(options), clock_(std::move(clock)), metrics_(metrics) {}

std::optional<JobLabels> Scheduler::LabelsOf(const std::string& job_id) {
  {
    std::lock_guard<std::mutex> lock(labels_mu_);
    auto it = labels_.find(job_id);
    if (it != labels_.end()) return it->second;
  }
  Result<JobRecord> job = store_.GetJob(job_id);
  if (!job.ok()) return std::nullopt;
  JobLabels labels{job->sweep, job->method, job->track, job->job_id};
  std::lock_guard<std::mutex> lock(labels_mu_);
  labels_[job_id] = labels;
  return labels;
}

void Scheduler::RecordAttemptEnd(const std::string& job_id, JobState job_state,
                                 const std::string& outcome_name) {
  if (!metrics_) return;
  if (outcome_name != outcome::kSucceeded && outcome_name != outcome::kHandedBack) {
    metrics_->CountFailure(outcome_name);
    if (job_state == JobState::kQueued) metrics_->CountRetry(outcome_name);
  }
  if (IsTerminal(job_state) && job_state != JobState::kSucceeded) metrics_->EndJob(job_id);
}

CoordinatorSnapshot Scheduler::Snapshot() {
  CoordinatorSnapshot snap;
  const int64_t now = clock_();
  if (Result<std::vector<SweepRecord>> sweeps = store_.ListSweeps(); sweeps.ok()) {
    for (const SweepRecord& s : *sweeps) {
      for (const auto& [state, n] : s.counts) snap.jobs.push_back({s.name, JobStateName(state), n});
    }
  }
  if (Result<int64_t> depth = store_.QueueDepth(now); depth.ok()) snap.queue_depth = *depth;
  if (Result<std::vector<WorkerRecord>> workers = store_.ListWorkers(); workers.ok()) {
    for (const WorkerRecord& w : *workers) {
      snap.workers.push_back({w.worker_id, w.hostname, w.state,
                              static_cast<int64_t>(w.slots.size()),
                              static_cast<int64_t>(w.running_jobs.size()),
                              static_cast<double>(now - w.last_heartbeat_ms) / 1000.0});
    }
  }
  return snap;
}

Scheduler::~Scheduler() { StopHousekeeping(); }

int64_t Scheduler::SystemClock() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Scheduler::StartHousekeeping() {
  std::lock_guard<std::mutex> lock(mu_);
  if (housekeeping_.joinable()) return;
  stopping_ = false;
  housekeeping_ = std::thread([this] { HousekeepingLoop(); });
}

void Scheduler::StopHousekeeping() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (housekeeping_.joinable()) housekeeping_.join();
}

Result<std::vector<std::string>> Scheduler::Housekeep() {
  const int64_t now = clock_();
  const auto start = std::chrono::steady_clock::now();
  Result<std::vector<std::string>> expired = store_.ExpireLeases(options_.backoff, now);
  if (!expired.ok()) return expired;
  if (metrics_) {
    metrics_->ObserveSqliteWrite(SecondsSince(start));
    for (const std::string& attempt : *expired) {
      if (Result<std::string> job_id = store_.JobOfAttempt(attempt); job_id.ok()) {
        if (Result<JobRecord> job = store_.GetJob(*job_id); job.ok()) {
          RecordAttemptEnd(*job_id, job->state, outcome::kLeaseExpired);
        }
      }
    }
    metrics_->ExpireFinishedJobs();
  }
  // A worker silent for three leases' worth of heartbeats is lost; its leases expired long ago.
  SWEEPD_RETURN_IF_ERROR(store_.MarkLostWorkers(now, 3 * options_.lease_ms));
  return expired;
}

void Scheduler::HousekeepingLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    Result<std::vector<std::string>> expired = Housekeep();
    if (!expired.ok()) {
      spdlog::warn("lease housekeeping failed: {}", expired.status().message());
    } else {
      for (const std::string& a : *expired)
        spdlog::info("lease of attempt {} expired; job requeued", a);
    }
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(options_.housekeeping_ms),
                 [this] { return stopping_; });
  }
}

Result<std::string> Scheduler::Register(const WorkerRecord& worker) {
  return store_.RegisterWorker(worker, clock_());
}

Result<HeartbeatResult> Scheduler::Heartbeat(const HeartbeatReport& report) {
  return store_.Heartbeat(report, clock_(), options_.lease_ms);
}

Result<LeaseDecision> Scheduler::LeaseJob(const LeaseRequest& request) {
  const int64_t now = clock_();
  const auto start = std::chrono::steady_clock::now();
  Result<std::optional<Lease>> lease = store_.LeaseJob(request, now, options_.lease_ms);
  if (metrics_) {
    const double seconds = SecondsSince(start);
    metrics_->ObserveLeaseLatency(seconds);
    metrics_->ObserveSqliteWrite(seconds);
  }
  if (!lease.ok()) return lease.status();
  LeaseDecision decision;
  if (lease->has_value()) {
    const JobRecord& job = (*lease)->job;
    {
      std::lock_guard<std::mutex> lock(labels_mu_);
      labels_.try_emplace(job.job_id, JobLabels{job.sweep, job.method, job.track, job.job_id});
    }
    if (metrics_) {
      metrics_->ObserveDispatchLatency(
          static_cast<double>(std::max<int64_t>(0, now - (*lease)->queued_since_ms)) / 1000.0);
    }
    decision.lease = std::move(*lease);
    return decision;
  }
  decision.retry_after_ms = options_.idle_retry_ms;
  // A job backing off becomes eligible sooner than the idle wait: come back for it then.
  Result<int64_t> next = store_.NextEligibleMs(request);
  if (next.ok() && *next > now)
    decision.retry_after_ms = std::min(decision.retry_after_ms, *next - now);
  return decision;
}

Status Scheduler::Started(const std::string& attempt_id, int64_t fencing_token) {
  return store_.MarkStarted(attempt_id, fencing_token, clock_());
}

Result<int64_t> Scheduler::StoreMetrics(const std::string& attempt_id, int64_t fencing_token,
                                        const std::vector<MetricPointIn>& points) {
  const auto start = std::chrono::steady_clock::now();
  Result<MetricsStored> stored = store_.StoreMetrics(attempt_id, fencing_token, points, clock_());
  if (!stored.ok()) return stored.status();
  if (metrics_) {
    metrics_->ObserveSqliteWrite(SecondsSince(start));
    metrics_->CountMetricPoints(static_cast<int64_t>(points.size()));
    if (std::optional<JobLabels> labels = LabelsOf(stored->job_id)) {
      // The running job's gauges show its latest step line; earlier ones would be overwritten.
      std::optional<nlohmann::json> last_step;
      for (const MetricPointIn& p : points) {
        nlohmann::json line = nlohmann::json::parse(p.json, nullptr, false);
        if (!line.is_object()) continue;
        const std::string type = line.value("type", "");
        if (type == "step") last_step = std::move(line);
        if (type == "final") metrics_->FinishJob(*labels, line);
      }
      if (last_step) metrics_->UpdateRunningJob(*labels, *last_step);
    }
  }
  return stored->stored_through;
}

Status Scheduler::Finish(const FinishReport& report) {
  const auto start = std::chrono::steady_clock::now();
  AttemptEnd ended;
  Status s = store_.FinishAttempt(report, options_.backoff, clock_(), &ended);
  if (!s.ok() || !metrics_) return s;
  metrics_->ObserveSqliteWrite(SecondsSince(start));
  if (ended.job_id.empty()) return s;  // a repeated finish, already counted
  if (report.outcome == outcome::kSucceeded && !report.result_json.empty()) {
    const nlohmann::json final_line = nlohmann::json::parse(report.result_json, nullptr, false);
    std::optional<JobLabels> labels = LabelsOf(ended.job_id);
    if (labels && final_line.is_object()) metrics_->FinishJob(*labels, final_line);
  }
  RecordAttemptEnd(ended.job_id, ended.job_state, report.outcome);
  return s;
}

}  // namespace sweepd::server
