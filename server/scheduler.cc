// Scheduling policy and lease housekeeping; state changes themselves are the store's.
#include "server/scheduler.h"

#include <algorithm>
#include <chrono>

#include <nlohmann/json.hpp>

#include <spdlog/spdlog.h>

#include "common/metric_line.h"

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
                                 Outcome outcome) {
  if (!metrics_) return;
  if (outcome != Outcome::kSucceeded && outcome != Outcome::kHandedBack) {
    const std::string failure_class(OutcomeName(outcome));
    metrics_->CountFailure(failure_class);
    if (job_state == JobState::kQueued) metrics_->CountRetry(failure_class);
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
          RecordAttemptEnd(*job_id, job->state, Outcome::kLeaseExpired);
        }
      }
    }
    metrics_->ExpireFinishedJobs();
  }
  if (Status checkpoint = store_.CheckpointWal(); !checkpoint.ok()) {
    spdlog::warn("WAL checkpoint failed: {}", checkpoint.message());
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

void Scheduler::RegisterAsync(WorkerRecord worker, Reply<std::string> reply) {
  store_.RegisterWorkerAsync(std::move(worker), clock_(), std::move(reply));
}

void Scheduler::HeartbeatAsync(HeartbeatReport report, Reply<HeartbeatResult> reply) {
  store_.HeartbeatAsync(std::move(report), clock_(), options_.lease_ms, std::move(reply));
}

void Scheduler::LeaseJobAsync(LeaseRequest request, Reply<LeaseDecision> reply) {
  const int64_t now = clock_();
  const auto start = std::chrono::steady_clock::now();
  store_.LeaseJobAsync(
      std::move(request), now, options_.lease_ms,
      [this, now, start, reply = std::move(reply)](Result<LeaseOutcome> out) {
        if (metrics_) {
          const double seconds = SecondsSince(start);
          metrics_->ObserveLeaseLatency(seconds);
          metrics_->ObserveSqliteWrite(seconds);
        }
        if (!out.ok()) return reply(out.status());
        LeaseDecision decision;
        if (out->lease) {
          const JobRecord& job = out->lease->job;
          {
            std::lock_guard<std::mutex> lock(labels_mu_);
            labels_.try_emplace(job.job_id,
                                JobLabels{job.sweep, job.method, job.track, job.job_id});
          }
          if (metrics_) {
            metrics_->ObserveDispatchLatency(
                static_cast<double>(std::max<int64_t>(0, now - out->lease->queued_since_ms)) /
                1000.0);
          }
          decision.lease = std::move(out->lease);
          return reply(std::move(decision));
        }
        decision.retry_after_ms = options_.idle_retry_ms;
        // A job backing off becomes eligible sooner than the idle wait: come back for it then.
        if (out->next_eligible_ms > now) {
          decision.retry_after_ms = std::min(decision.retry_after_ms, out->next_eligible_ms - now);
        }
        reply(std::move(decision));
      });
}

void Scheduler::StartedAsync(std::string attempt_id, int64_t fencing_token, StatusReply reply) {
  store_.MarkStartedAsync(std::move(attempt_id), fencing_token, clock_(), std::move(reply));
}

void Scheduler::StoreMetricsAsync(std::string attempt_id, int64_t fencing_token,
                                  std::vector<MetricPointIn> points, Reply<int64_t> reply) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t count = static_cast<int64_t>(points.size());
  // The lines for /metrics are read here, on the caller's thread: the reply runs on the
  // store's writer. Only the latest step line matters (each overwrites the gauges).
  std::optional<nlohmann::json> last_step;
  std::vector<nlohmann::json> finals;
  if (metrics_) {
    for (MetricPointIn& p : points) {
      if (!p.line) p.line = MetricLine::Read(p.json);  // read once: the store uses it too
      if (!p.line->ok()) continue;
      const MetricLine& line = **p.line;
      if (line.type() == metric_type::kStep) last_step = line.value();
      if (line.type() == metric_type::kFinal) finals.push_back(line.value());
    }
  }
  store_.StoreMetricsAsync(
      std::move(attempt_id), fencing_token, std::move(points), clock_(),
      [this, start, count, last_step = std::move(last_step), finals = std::move(finals),
       reply = std::move(reply)](Result<MetricsStored> stored) {
        if (!stored.ok()) return reply(stored.status());
        if (metrics_) {
          metrics_->ObserveSqliteWrite(SecondsSince(start));
          metrics_->CountMetricPoints(count);
          if (std::optional<JobLabels> labels = LabelsOf(stored->job_id)) {
            for (const nlohmann::json& line : finals) metrics_->FinishJob(*labels, line);
            if (last_step) metrics_->UpdateRunningJob(*labels, *last_step);
          }
        }
        reply(stored->stored_through);
      });
}

void Scheduler::FinishAsync(FinishReport report, StatusReply reply) {
  const auto start = std::chrono::steady_clock::now();
  std::optional<nlohmann::json> final_line;
  if (metrics_ && report.outcome == Outcome::kSucceeded && !report.result_json.empty()) {
    Result<MetricLine> line = MetricLine::Read(report.result_json);
    if (line.ok() && line->type() == metric_type::kFinal) final_line = line->value();
  }
  const Outcome outcome = report.outcome;
  store_.FinishAttemptAsync(std::move(report), options_.backoff, clock_(),
                            [this, start, outcome, final_line = std::move(final_line),
                             reply = std::move(reply)](Result<AttemptEnd> ended) {
                              if (!ended.ok()) return reply(ended.status());
                              // An empty job id: a repeated finish, already counted.
                              if (metrics_ && !ended->job_id.empty()) {
                                metrics_->ObserveSqliteWrite(SecondsSince(start));
                                if (final_line) {
                                  if (std::optional<JobLabels> labels = LabelsOf(ended->job_id)) {
                                    metrics_->FinishJob(*labels, *final_line);
                                  }
                                }
                                RecordAttemptEnd(ended->job_id, ended->job_state, outcome);
                              }
                              reply(Status::Ok());
                            });
}

}  // namespace sweepd::server
