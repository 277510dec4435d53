// CoordinatorMetrics: what sweepd exposes to Prometheus on /metrics (prometheus-cpp).
// Names follow Prometheus conventions (base units, _total counters, _seconds, _bytes).
// State that lives in the store (jobs by state, queue depth, workers) is read from a
// snapshot callback at scrape time, so it never drifts from SQLite; events (latencies,
// failures, per-job training numbers) are recorded as they happen. Per-job series are
// removed `retention` after the job finishes; their numbers live on in SQLite.
// Thread-safe: every method may be called from any gRPC thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace prometheus {
class Exposer;
class Registry;
template <typename T>
class Family;
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace sweepd::server {

// What the store knows at one moment, for the scrape-time gauges.
struct CoordinatorSnapshot {
  struct SweepState {
    std::string sweep;
    std::string state;
    int64_t jobs = 0;
  };
  struct WorkerSlots {
    std::string worker;
    std::string hostname;
    std::string state;
    int64_t slots = 0;
    int64_t busy = 0;
    double heartbeat_age_seconds = 0;
  };
  std::vector<SweepState> jobs;
  int64_t queue_depth = 0;  // jobs queued and eligible now (not blocked, not backing off)
  std::vector<WorkerSlots> workers;
};

// Labels of one job's series.
struct JobLabels {
  std::string sweep;
  std::string method;
  std::string track;
  std::string job;
};

class CoordinatorMetrics {
 public:
  using SnapshotSource = std::function<CoordinatorSnapshot()>;

  // Serves /metrics on `listen` ("HOST:PORT", port 0 picks a free one); empty: no HTTP
  // endpoint (the registry still works, e.g. for tests and benchmarks).
  static Result<std::unique_ptr<CoordinatorMetrics>> Start(const std::string& listen,
                                                           std::chrono::seconds retention,
                                                           SnapshotSource snapshot);
  ~CoordinatorMetrics();

  // "HOST:PORT" actually bound, or empty without an endpoint.
  const std::string& address() const { return address_; }

  void ObserveLeaseLatency(double seconds);     // one LeaseJob call, granted or not
  void ObserveDispatchLatency(double seconds);  // a job's wait from queued to leased
  void CountRetry(const std::string& failure_class);
  void CountFailure(const std::string& failure_class);  // an attempt that did not succeed
  void CountMetricPoints(int64_t n);
  void ObserveRpc(const std::string& method, const std::string& code, double seconds);
  void ObserveSqliteWrite(double seconds);

  // A running job's latest "step" metrics line.
  void UpdateRunningJob(const JobLabels& labels, const nlohmann::json& step_line);
  // The job's "final" line: entropy, stable rank, Δ per task, trade-off; starts retention.
  void FinishJob(const JobLabels& labels, const nlohmann::json& final_line);
  // The job ended without a result (failed, cancelled): starts retention of its series.
  void EndJob(const std::string& job);
  // Removes the series of jobs whose retention has passed; sweepd calls it periodically.
  void ExpireFinishedJobs(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

  // The text exposition, as a scrape would return it (for tests and `sweepd --metrics-dump`).
  std::string Render() const;

 private:
  class SnapshotCollector;
  struct JobSeries;

  CoordinatorMetrics(std::chrono::seconds retention, SnapshotSource snapshot);
  JobSeries& SeriesFor(const JobLabels& labels);  // requires mu_
  void RemoveSeries(JobSeries& series);            // requires mu_

  std::chrono::seconds retention_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<SnapshotCollector> snapshot_collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string address_;

  prometheus::Family<prometheus::Histogram>* lease_latency_;
  prometheus::Family<prometheus::Histogram>* dispatch_latency_;
  prometheus::Family<prometheus::Counter>* retries_;
  prometheus::Family<prometheus::Counter>* failures_;
  prometheus::Family<prometheus::Counter>* metric_points_;
  prometheus::Family<prometheus::Counter>* rpc_requests_;
  prometheus::Family<prometheus::Histogram>* rpc_latency_;
  prometheus::Family<prometheus::Histogram>* sqlite_write_;
  prometheus::Family<prometheus::Gauge>* job_tokens_per_second_;
  prometheus::Family<prometheus::Gauge>* job_peak_memory_;
  prometheus::Family<prometheus::Gauge>* job_loss_;
  prometheus::Family<prometheus::Gauge>* job_step_;
  prometheus::Family<prometheus::Gauge>* job_svd_entropy_;
  prometheus::Family<prometheus::Gauge>* job_stable_rank_;
  prometheus::Family<prometheus::Gauge>* job_delta_;
  prometheus::Family<prometheus::Gauge>* job_tradeoff_;
  prometheus::Family<prometheus::Gauge>* job_trainable_params_;

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<JobSeries>> jobs_;  // by job id
};

}  // namespace sweepd::server
