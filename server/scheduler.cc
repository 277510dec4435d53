// Scheduling policy and lease housekeeping; state changes themselves are the store's.
#include "server/scheduler.h"

#include <chrono>

#include <spdlog/spdlog.h>

namespace sweepd::server {

Scheduler::Scheduler(Store& store, SchedulerOptions options, Clock clock)
    : store_(store), options_(options), clock_(std::move(clock)) {}

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
  Result<std::vector<std::string>> expired = store_.ExpireLeases(options_.backoff, now);
  if (!expired.ok()) return expired;
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
      for (const std::string& a : *expired) spdlog::info("lease of attempt {} expired; job requeued", a);
    }
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(options_.housekeeping_ms), [this] { return stopping_; });
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
  Result<std::optional<Lease>> lease = store_.LeaseJob(request, now, options_.lease_ms);
  if (!lease.ok()) return lease.status();
  LeaseDecision decision;
  if (lease->has_value()) {
    decision.lease = std::move(*lease);
    return decision;
  }
  decision.retry_after_ms = options_.idle_retry_ms;
  // A job backing off becomes eligible sooner than the idle wait: come back for it then.
  Result<int64_t> next = store_.NextEligibleMs(request);
  if (next.ok() && *next > now) decision.retry_after_ms = std::min(decision.retry_after_ms, *next - now);
  return decision;
}

Status Scheduler::Started(const std::string& attempt_id, int64_t fencing_token) {
  return store_.MarkStarted(attempt_id, fencing_token, clock_());
}

Result<int64_t> Scheduler::StoreMetrics(const std::string& attempt_id, int64_t fencing_token,
                                        const std::vector<MetricPointIn>& points) {
  return store_.StoreMetrics(attempt_id, fencing_token, points, clock_());
}

Status Scheduler::Finish(const FinishReport& report) {
  return store_.FinishAttempt(report, options_.backoff, clock_());
}

}  // namespace sweepd::server
