// The store's records as sweepctl's (client/records.h); the queries are the store reader's.
#include "client/db_source.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <tuple>

#include <nlohmann/json.hpp>

#include "common/metric_line.h"

namespace sweepd::client {
namespace {

nlohmann::json ParseOrString(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::json(text) : j;
}

SweepInfo ToInfo(const store::SweepRecord& s) {
  SweepInfo info;
  info.name = s.name;
  info.submitted_ms = s.submitted_ms;
  info.priority = s.priority;
  info.cancelled = s.cancelled;
  info.total_jobs = s.total_jobs;
  for (const auto& [state, n] : s.counts) info.counts[store::JobStateName(state)] = n;
  return info;
}

JobInfo ToInfo(const store::JobRecord& j, const std::string& sweep) {
  JobInfo out;
  out.job_id = j.job_id;
  out.sweep = sweep;
  out.kind = j.kind;
  out.state = store::JobStateName(j.state);
  out.method = j.method;
  out.track = j.track;
  out.seed = j.seed;
  out.trainable_params = j.trainable_params;
  out.attempts = j.attempts;
  out.last_outcome = j.last_outcome;
  out.last_error = j.last_error;
  out.config_json = j.config_json;
  out.depends_on = j.depends_on;
  out.updated_ms = j.updated_ms;
  return out;
}

WorkerInfo ToInfo(const store::WorkerRecord& w) {
  WorkerInfo out;
  out.worker_id = w.worker_id;
  out.hostname = w.hostname;
  out.state = w.state;
  out.last_heartbeat_ms = w.last_heartbeat_ms;
  for (const store::SlotInfo& slot : w.slots) {
    std::string text = slot.device_kind + ":" + std::to_string(slot.index);
    if (!slot.device_name.empty()) text += " " + slot.device_name;
    out.slots.push_back(std::move(text));
  }
  out.labels = w.labels;
  out.running_jobs = w.running_jobs;
  return out;
}

// A running job's latest step line; fields of the wrong type read as 0.
RunningMetrics ToMetrics(const store::RunningProgress& r) {
  RunningMetrics m;
  m.job_id = r.job_id;
  m.worker = r.worker_id;
  if (Result<MetricLine> step = MetricLine::Read(r.step_json); step.ok()) {
    m.step = step->step().value_or(0);
    m.total_steps = step->Integer("total_steps").value_or(0);
    m.loss = step->Number("loss").value_or(0.0);
    m.tokens_per_s = step->Number("tokens_per_s").value_or(0.0);
  }
  return m;
}

}  // namespace

Result<std::unique_ptr<DbSource>> DbSource::Open(const std::string& path) {
  Result<std::unique_ptr<store::StoreReader>> reader = store::StoreReader::Open(path, "sweepctl");
  if (!reader.ok()) return reader.status();
  return std::unique_ptr<DbSource>(new DbSource(std::move(*reader), path));
}

Result<SweepInfo> DbSource::ReadSummary(const std::string& sweep) {
  Result<store::SweepRecord> s = reader_->GetSweep(sweep);
  if (!s.ok()) return s.status();
  return ToInfo(*s);
}

Result<std::vector<SweepInfo>> DbSource::ListSweeps() {
  Result<std::vector<store::SweepRecord>> sweeps = reader_->ListSweeps();
  if (!sweeps.ok()) return sweeps.status();
  std::vector<SweepInfo> out;
  for (const store::SweepRecord& s : *sweeps) out.push_back(ToInfo(s));
  return out;
}

Result<SweepDetail> DbSource::GetSweep(const std::string& sweep) {
  auto summary = ReadSummary(sweep);
  if (!summary.ok()) return summary.status();
  Result<std::vector<store::JobRecord>> jobs = reader_->SweepJobs(sweep);
  if (!jobs.ok()) return jobs.status();
  SweepDetail detail{std::move(*summary), {}};
  for (const store::JobRecord& j : *jobs) detail.jobs.push_back(ToInfo(j, sweep));
  return detail;
}

Result<std::vector<ResultRecord>> DbSource::QueryResults(const std::string& sweep) {
  Result<std::vector<store::ResultRecord>> rows = reader_->QueryResults(sweep);
  if (!rows.ok()) return rows.status();
  std::vector<ResultRecord> out;
  for (const store::ResultRecord& r : *rows) {
    out.push_back({r.job_id, r.sweep, ParseOrString(r.config_json), ParseOrString(r.result_json),
                   r.finished_ms});
  }
  return out;
}

Result<JobLog> DbSource::GetJobLog(const std::string& job_id, int64_t after_seq) {
  Result<store::JobLog> stored = reader_->GetJobLog(job_id, after_seq);
  if (!stored.ok()) return stored.status();
  JobLog log;
  log.state = store::JobStateName(stored->state);
  log.stderr_tail = stored->stderr_tail;
  log.more = stored->more;
  for (const store::StoredPoint& p : stored->points) log.points.push_back({p.seq, p.json});
  return log;
}

Result<std::vector<store::AuditEntry>> DbSource::ListAudit(int64_t since_ms) {
  return reader_->Audit(since_ms);
}

Result<std::vector<WorkerInfo>> DbSource::ListWorkers() {
  Result<std::vector<store::WorkerRecord>> workers = reader_->ListWorkers();
  if (!workers.ok()) return workers.status();
  std::vector<WorkerInfo> out;
  for (const store::WorkerRecord& w : *workers) out.push_back(ToInfo(w));
  // By host, as the workers table prints them.
  std::stable_sort(out.begin(), out.end(), [](const WorkerInfo& a, const WorkerInfo& b) {
    return std::tie(a.hostname, a.worker_id) < std::tie(b.hostname, b.worker_id);
  });
  return out;
}

Status DbSource::WatchSweep(const std::string& sweep,
                            const std::function<bool(const SweepProgress&)>& on_progress) {
  // Watching waits for sweepd's commits: reopen so that SQLite follows the writer.
  Result<std::unique_ptr<store::StoreReader>> live =
      store::StoreReader::Open(path_, "sweepctl", /*follow_writers=*/true);
  if (!live.ok()) return live.status();
  reader_ = std::move(*live);
  for (;;) {
    SweepProgress progress;
    auto summary = ReadSummary(sweep);
    if (!summary.ok()) return summary.status();
    progress.summary = std::move(*summary);
    Result<std::vector<store::RunningProgress>> running = reader_->RunningProgressOf(sweep);
    if (!running.ok()) return running.status();
    for (const store::RunningProgress& r : *running) progress.running.push_back(ToMetrics(r));
    progress.finished = progress.summary.Finished();
    if (!on_progress(progress) || progress.finished) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

Status DbSource::ReadOnlyRefusal(const std::string& what) const {
  return Status::FailedPrecondition(what + " needs a running coordinator; --db opens " + path_ +
                                    " read-only. Use --coordinator HOST:PORT (or $SWEEPD_ADDR).");
}

Result<SubmitOutcome> DbSource::Submit(const std::string&, const std::string&) {
  return ReadOnlyRefusal("submit");
}
Result<int64_t> DbSource::CancelSweep(const std::string&) { return ReadOnlyRefusal("cancel"); }
Result<int64_t> DbSource::RetryJobs(const std::string&, const std::vector<std::string>&) {
  return ReadOnlyRefusal("retry");
}

}  // namespace sweepd::client
