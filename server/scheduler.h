// Scheduler: the policy around the store's transitions -- lease duration, retry backoff,
// how long an idle worker waits before asking again, when a silent worker counts as
// lost -- and the housekeeping thread that expires leases (and checkpoints the WAL). Workers
// pull: LeaseJob asks the store for the best job the slot can run. Thread-safe: the worker
// calls may come from any thread and reply on the store's writer thread; the housekeeping
// thread is the only one it starts. Events (lease latency, failures, metric lines) go to the
// optional CoordinatorMetrics.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/contracts.h"
#include "common/status.h"
#include "server/coordinator_metrics.h"
#include "server/store_names.h"

namespace sweepd::server {

struct SchedulerOptions {
  int64_t lease_ms = 60000;              // a lease lives this long without a heartbeat
  int64_t heartbeat_interval_ms = 5000;  // what workers are told to use
  int64_t idle_retry_ms = 2000;          // a worker with nothing to do asks again after this
  int64_t housekeeping_ms = 1000;        // how often leases are checked for expiry
  BackoffPolicy backoff;
};

struct LeaseDecision {
  std::optional<Lease> lease;
  int64_t retry_after_ms = 0;  // when no lease: how long to wait before asking again
};

class Scheduler {
 public:
  using Clock = std::function<int64_t()>;  // Unix milliseconds
  // `store` (and `metrics`, when given) must outlive the scheduler.
  Scheduler(Store& store, SchedulerOptions options, Clock clock = SystemClock,
            CoordinatorMetrics* metrics = nullptr);
  ~Scheduler();  // stops housekeeping

  static int64_t SystemClock();

  // Starts the thread that expires leases and marks silent workers lost.
  void StartHousekeeping();
  void StopHousekeeping();
  // One round of housekeeping (what the thread does); returns the expired attempts.
  Result<std::vector<std::string>> Housekeep();

  const SchedulerOptions& options() const { return options_; }
  int64_t Now() const { return clock_(); }

  // The workers' calls. Each answers through `reply`, on the store's writer thread, once
  // its writes are committed (see Store's Reply): the caller does not wait.
  void RegisterAsync(WorkerRecord worker, Reply<std::string> reply);
  void HeartbeatAsync(HeartbeatReport report, Reply<HeartbeatResult> reply);
  void LeaseJobAsync(LeaseRequest request, Reply<LeaseDecision> reply);
  void StartedAsync(std::string attempt_id, int64_t fencing_token, StatusReply reply);
  // Replies with the highest seq up to which every point of the attempt is stored.
  void StoreMetricsAsync(std::string attempt_id, int64_t fencing_token,
                         std::vector<MetricPointIn> points, Reply<int64_t> reply);
  // What the store holds now, for the scrape-time gauges.
  CoordinatorSnapshot Snapshot();
  void FinishAsync(FinishReport report, StatusReply reply);
  // The worker an attempt is leased to (a read; any thread).
  Result<std::string> WorkerOfAttempt(const std::string& attempt_id) {
    return store_.WorkerOfAttempt(attempt_id);
  }

 private:
  void HousekeepingLoop();
  // Labels of a job's metric series (cached: they never change).
  std::optional<JobLabels> LabelsOf(const std::string& job_id);
  // Counts the failure (and the retry, if the job was requeued) of an ended attempt.
  void RecordAttemptEnd(const std::string& job_id, JobState job_state, Outcome outcome);

  Store& store_;
  SchedulerOptions options_;
  Clock clock_;
  CoordinatorMetrics* metrics_;  // not owned; may be null
  std::mutex labels_mu_;
  std::map<std::string, JobLabels> labels_;  // by job id
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread housekeeping_;
};

}  // namespace sweepd::server
