// CoordinatorMetrics: prometheus-cpp registry, scrape-time snapshot gauges, per-job
// series with retention.
#include "server/coordinator_metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <optional>
#include <stdexcept>

#include "common/contracts.h"
#include "server/store_names.h"

namespace sweepd::server {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Buckets for request-like latencies: 100 µs .. 10 s.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
  return kBuckets;
}
// Buckets for queue waits: 10 ms .. 1 day.
const prometheus::Histogram::BucketBoundaries& WaitBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.01, 0.1, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400};
  return kBuckets;
}

ClientMetric GaugeMetric(std::vector<prometheus::ClientMetric::Label> labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  return m;
}

MetricFamily GaugeFamily(std::string name, std::string help) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = MetricType::Gauge;
  return f;
}

std::optional<double> Number(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return std::nullopt;
  double v = j[key].get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace

// Gauges read from the store at scrape time.
class CoordinatorMetrics::SnapshotCollector : public prometheus::Collectable {
 public:
  explicit SnapshotCollector(SnapshotSource source) : source_(std::move(source)) {}

  std::vector<MetricFamily> Collect() const override {
    if (!source_) return {};
    const CoordinatorSnapshot s = source_();
    MetricFamily jobs = GaugeFamily("sweepd_jobs", "Jobs by sweep and state.");
    // Every state of every sweep, zeros included: a panel of failed jobs shows 0, not "no data".
    std::map<std::string, std::map<std::string, int64_t>> by_sweep;
    for (const auto& j : s.jobs) {
      auto& states = by_sweep[j.sweep];
      for (JobState state : {JobState::kBlocked, JobState::kQueued, JobState::kLeased, JobState::kRunning,
                             JobState::kSucceeded, JobState::kFailed, JobState::kCancelled}) {
        states.emplace(JobStateName(state), 0);
      }
      states[j.state] += j.jobs;
    }
    for (const auto& [sweep, states] : by_sweep) {
      for (const auto& [state, n] : states) {
        jobs.metric.push_back(GaugeMetric({{"sweep", sweep}, {"state", state}}, static_cast<double>(n)));
      }
    }
    MetricFamily queue =
        GaugeFamily("sweepd_scheduler_queue_depth", "Jobs queued and eligible to be leased now.");
    queue.metric.push_back(GaugeMetric({}, static_cast<double>(s.queue_depth)));

    MetricFamily workers = GaugeFamily("sweepd_workers", "Registered workers by state.");
    std::map<std::string, int64_t> by_state = {{"alive", 0}, {"draining", 0}, {"lost", 0}};
    MetricFamily slots = GaugeFamily("sweepd_worker_slots", "Slots (GPUs, or the CPU) of a worker.");
    MetricFamily busy = GaugeFamily("sweepd_worker_slots_busy", "Slots of a worker running a job.");
    MetricFamily age = GaugeFamily("sweepd_worker_heartbeat_age_seconds",
                                   "Seconds since the worker's last heartbeat.");
    for (const auto& w : s.workers) {
      by_state[w.state] += 1;
      if (w.state == "gone") continue;  // departed workers keep no per-worker series
      std::vector<ClientMetric::Label> labels = {{"worker", w.worker}, {"hostname", w.hostname}};
      slots.metric.push_back(GaugeMetric(labels, static_cast<double>(w.slots)));
      busy.metric.push_back(GaugeMetric(labels, static_cast<double>(w.busy)));
      age.metric.push_back(GaugeMetric(labels, w.heartbeat_age_seconds));
    }
    for (const auto& [state, n] : by_state) {
      workers.metric.push_back(GaugeMetric({{"state", state}}, static_cast<double>(n)));
    }
    return {jobs, queue, workers, slots, busy, age};
  }

 private:
  SnapshotSource source_;
};

struct CoordinatorMetrics::JobSeries {
  JobLabels labels;
  prometheus::Gauge* tokens_per_second = nullptr;
  prometheus::Gauge* peak_memory = nullptr;
  prometheus::Gauge* loss = nullptr;
  prometheus::Gauge* step = nullptr;
  prometheus::Gauge* svd_entropy = nullptr;
  prometheus::Gauge* stable_rank = nullptr;
  prometheus::Gauge* tradeoff = nullptr;
  prometheus::Gauge* trainable_params = nullptr;
  std::vector<prometheus::Gauge*> deltas;
  std::optional<std::chrono::steady_clock::time_point> finished;
};

CoordinatorMetrics::CoordinatorMetrics(std::chrono::seconds retention, SnapshotSource snapshot)
    : retention_(retention),
      registry_(std::make_shared<prometheus::Registry>()),
      snapshot_collector_(std::make_shared<SnapshotCollector>(std::move(snapshot))) {
  auto& r = *registry_;
  lease_latency_ = &prometheus::BuildHistogram()
                        .Name("sweepd_scheduler_lease_duration_seconds")
                        .Help("Time sweepd takes to answer a LeaseJob call.")
                        .Register(r);
  dispatch_latency_ = &prometheus::BuildHistogram()
                           .Name("sweepd_scheduler_dispatch_wait_seconds")
                           .Help("Time a job waited from queued to leased.")
                           .Register(r);
  retries_ = &prometheus::BuildCounter()
                  .Name("sweepd_job_retries_total")
                  .Help("Jobs put back in the queue after a failed attempt, by failure class.")
                  .Register(r);
  failures_ = &prometheus::BuildCounter()
                   .Name("sweepd_attempt_failures_total")
                   .Help("Attempts that did not succeed, by failure class.")
                   .Register(r);
  metric_points_ = &prometheus::BuildCounter()
                        .Name("sweepd_metric_points_stored_total")
                        .Help("Metric points stored (duplicates not counted).")
                        .Register(r);
  rpc_requests_ = &prometheus::BuildCounter()
                       .Name("sweepd_grpc_requests_total")
                       .Help("gRPC calls handled, by method and status code.")
                       .Register(r);
  rpc_latency_ = &prometheus::BuildHistogram()
                      .Name("sweepd_grpc_request_duration_seconds")
                      .Help("gRPC call handling time, by method.")
                      .Register(r);
  sqlite_write_ = &prometheus::BuildHistogram()
                       .Name("sweepd_sqlite_write_duration_seconds")
                       .Help("Time of one SQLite write transaction, commit included.")
                       .Register(r);
  auto gauge = [&r](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(r);
  };
  job_tokens_per_second_ =
      gauge("sweepd_job_tokens_per_second", "Training throughput of a job, latest logging step.");
  job_peak_memory_ = gauge("sweepd_job_peak_memory_bytes",
                           "Peak device memory of a job (CUDA allocator peak, or peak RSS on CPU).");
  job_loss_ = gauge("sweepd_job_loss", "Training loss of a job, latest logging step.");
  job_step_ = gauge("sweepd_job_step", "Optimizer steps a job has taken.");
  job_svd_entropy_ = gauge("sweepd_job_svd_entropy",
                           "Mean singular value entropy of the weight update over adapted layers.");
  job_stable_rank_ =
      gauge("sweepd_job_stable_rank", "Mean stable rank of the weight update over adapted layers.");
  job_delta_ = gauge("sweepd_job_delta_score",
                     "Fine-tuned minus base score of a task, in points.");
  job_tradeoff_ = gauge("sweepd_job_tradeoff_score",
                        "Plasticity gain minus lambda times stability loss, in points.");
  job_trainable_params_ =
      gauge("sweepd_job_trainable_parameters", "Trainable parameters of a job's adapters.");

  // Known label values start at zero, so rates and alerts see the series before the first event.
  // Every attempt outcome but success, and dependency_failed (a job's, never an attempt's).
  for (const auto& [outcome, cls] : kOutcomeNames) {
    if (outcome == Outcome::kSucceeded || outcome == Outcome::kDependencyFailed) continue;
    retries_->Add({{"class", std::string(cls)}});
    failures_->Add({{"class", std::string(cls)}});
  }
  lease_latency_->Add({}, LatencyBuckets());
  dispatch_latency_->Add({}, WaitBuckets());
  sqlite_write_->Add({}, LatencyBuckets());
  metric_points_->Add({});
}

CoordinatorMetrics::~CoordinatorMetrics() = default;

Result<std::unique_ptr<CoordinatorMetrics>> CoordinatorMetrics::Start(
    const std::string& listen, std::chrono::seconds retention, SnapshotSource snapshot) {
  std::unique_ptr<CoordinatorMetrics> m(new CoordinatorMetrics(retention, std::move(snapshot)));
  if (listen.empty()) return m;
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument("--metrics-listen: expected HOST:PORT, got '" + listen + "'");
  }
  try {
    m->exposer_ = std::make_unique<prometheus::Exposer>(listen, 2);
  } catch (const std::exception& e) {
    return Status::Unavailable("--metrics-listen " + listen + ": cannot listen (" + e.what() + ")");
  }
  m->exposer_->RegisterCollectable(m->registry_);
  m->exposer_->RegisterCollectable(m->snapshot_collector_);
  const auto ports = m->exposer_->GetListeningPorts();
  m->address_ = listen.substr(0, colon) + ":" + std::to_string(ports.empty() ? 0 : ports.front());
  return m;
}

void CoordinatorMetrics::ObserveLeaseLatency(double seconds) {
  lease_latency_->Add({}, LatencyBuckets()).Observe(seconds);
}
void CoordinatorMetrics::ObserveDispatchLatency(double seconds) {
  dispatch_latency_->Add({}, WaitBuckets()).Observe(seconds);
}
void CoordinatorMetrics::CountRetry(const std::string& failure_class) {
  retries_->Add({{"class", failure_class}}).Increment();
}
void CoordinatorMetrics::CountFailure(const std::string& failure_class) {
  failures_->Add({{"class", failure_class}}).Increment();
}
void CoordinatorMetrics::CountMetricPoints(int64_t n) {
  metric_points_->Add({}).Increment(static_cast<double>(n));
}
void CoordinatorMetrics::ObserveRpc(const std::string& method, const std::string& code,
                                    double seconds) {
  rpc_requests_->Add({{"method", method}, {"code", code}}).Increment();
  rpc_latency_->Add({{"method", method}}, LatencyBuckets()).Observe(seconds);
}
void CoordinatorMetrics::ObserveSqliteWrite(double seconds) {
  sqlite_write_->Add({}, LatencyBuckets()).Observe(seconds);
}

CoordinatorMetrics::JobSeries& CoordinatorMetrics::SeriesFor(const JobLabels& l) {
  auto& slot = jobs_[l.job];
  if (!slot) {
    slot = std::make_unique<JobSeries>();
    slot->labels = l;
  }
  return *slot;
}

void CoordinatorMetrics::UpdateRunningJob(const JobLabels& l, const nlohmann::json& step) {
  std::lock_guard<std::mutex> lock(mu_);
  JobSeries& s = SeriesFor(l);
  const std::map<std::string, std::string> labels = {
      {"sweep", l.sweep}, {"method", l.method}, {"track", l.track}, {"job", l.job}};
  auto set = [&](prometheus::Family<prometheus::Gauge>* family, prometheus::Gauge*& gauge,
                 const char* key) {
    if (auto v = Number(step, key)) {
      if (gauge == nullptr) gauge = &family->Add(labels);
      gauge->Set(*v);
    }
  };
  set(job_tokens_per_second_, s.tokens_per_second, "tokens_per_s");
  set(job_peak_memory_, s.peak_memory, "peak_mem_bytes");
  set(job_loss_, s.loss, "loss");
  set(job_step_, s.step, "step");
}

void CoordinatorMetrics::FinishJob(const JobLabels& l, const nlohmann::json& final_line) {
  std::lock_guard<std::mutex> lock(mu_);
  JobSeries& s = SeriesFor(l);
  const std::map<std::string, std::string> labels = {
      {"sweep", l.sweep}, {"method", l.method}, {"track", l.track}, {"job", l.job}};
  auto set = [&](prometheus::Family<prometheus::Gauge>* family, prometheus::Gauge*& gauge,
                 std::optional<double> v) {
    if (!v) return;
    if (gauge == nullptr) gauge = &family->Add(labels);
    gauge->Set(*v);
  };
  set(job_tokens_per_second_, s.tokens_per_second, Number(final_line, "tokens_per_s"));
  set(job_peak_memory_, s.peak_memory, Number(final_line, "peak_mem_bytes"));
  set(job_loss_, s.loss, Number(final_line, "final_loss"));
  set(job_tradeoff_, s.tradeoff, Number(final_line, "tradeoff"));
  set(job_trainable_params_, s.trainable_params, Number(final_line, "trainable_params"));
  if (final_line.contains("svd")) {
    set(job_svd_entropy_, s.svd_entropy, Number(final_line["svd"], "mean_entropy"));
    set(job_stable_rank_, s.stable_rank, Number(final_line["svd"], "mean_stable_rank"));
  }
  if (final_line.contains("delta") && final_line["delta"].is_object() && s.deltas.empty()) {
    for (const auto& [task, value] : final_line["delta"].items()) {
      if (!value.is_number()) continue;
      auto task_labels = labels;
      task_labels["task"] = task;
      auto* g = &job_delta_->Add(task_labels);
      g->Set(value.get<double>());
      s.deltas.push_back(g);
    }
  }
  s.finished = std::chrono::steady_clock::now();
}

void CoordinatorMetrics::EndJob(const std::string& job) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job);
  if (it != jobs_.end() && !it->second->finished) it->second->finished = std::chrono::steady_clock::now();
}

void CoordinatorMetrics::RemoveSeries(JobSeries& s) {
  auto drop = [](prometheus::Family<prometheus::Gauge>* family, prometheus::Gauge*& g) {
    if (g != nullptr) family->Remove(g);
    g = nullptr;
  };
  drop(job_tokens_per_second_, s.tokens_per_second);
  drop(job_peak_memory_, s.peak_memory);
  drop(job_loss_, s.loss);
  drop(job_step_, s.step);
  drop(job_svd_entropy_, s.svd_entropy);
  drop(job_stable_rank_, s.stable_rank);
  drop(job_tradeoff_, s.tradeoff);
  drop(job_trainable_params_, s.trainable_params);
  for (auto* g : s.deltas) job_delta_->Remove(g);
  s.deltas.clear();
}

void CoordinatorMetrics::ExpireFinishedJobs(std::chrono::steady_clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    if (it->second->finished && now - *it->second->finished >= retention_) {
      RemoveSeries(*it->second);
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
}

std::string CoordinatorMetrics::Render() const {
  auto families = registry_->Collect();
  for (auto& f : snapshot_collector_->Collect()) families.push_back(std::move(f));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace sweepd::server
