// SweepService RPCs -> store and submission calls.
#include "server/sweep_service.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/metric_line.h"
#include "server/proto_convert.h"
#include "server/request_limits.h"
#include "server/sweep_submission.h"

namespace sweepd::server {
namespace {

// Sweeps of up to this many jobs get their expanded grid in the submit response.
constexpr size_t kListJobsUpTo = 1000;
// How far back WatchSweep re-reads job updates after the first snapshot.
constexpr int64_t kWatchMarginMs = 5000;

void AddRunning(const std::vector<RunningProgress>& running, v1::SweepEvent* event) {
  for (const RunningProgress& r : running) {
    v1::LatestMetrics* m = event->add_running();
    m->set_job_id(r.job_id);
    m->set_worker(r.worker_id);
    // Typed reads: a field of the wrong type shows as 0 and never fails the watch.
    const Result<MetricLine> step = MetricLine::Read(r.step_json);
    if (!step.ok()) continue;
    m->set_step(step->step().value_or(0));
    m->set_total_steps(step->Integer("total_steps").value_or(0));
    m->set_loss(step->Number("loss").value_or(0.0));
    m->set_tokens_per_second(step->Number("tokens_per_s").value_or(0.0));
  }
}

}  // namespace

grpc::Status SweepServiceImpl::Authenticate(const grpc::ServerContext* context, Permission need,
                                            Caller* caller) const {
  Caller admitted{"", Role::kAdmin};
  if (options_.auth != nullptr) {
    grpc::Status denied;
    std::optional<Caller> c = options_.auth->Admit(*context, need, &denied);
    if (!c) return denied;
    admitted = std::move(*c);
  }
  if (caller != nullptr) *caller = std::move(admitted);
  return grpc::Status::OK;
}

grpc::Status SweepServiceImpl::Admit(const grpc::ServerContext* context, Permission need,
                                     Caller* caller) const {
  Caller admitted;
  if (grpc::Status s = Authenticate(context, need, &admitted); !s.ok()) return s;
  if (options_.call_limits != nullptr) {
    const std::string key = CallLimits::CallerOf(*context, admitted.name);
    if (grpc::Status s = options_.call_limits->AdmitRequest(key); !s.ok()) return s;
  }
  if (caller != nullptr) *caller = std::move(admitted);
  return grpc::Status::OK;
}

void SweepServiceImpl::Audit(const Caller& caller, std::string_view action, const std::string& target,
                             const grpc::Status& outcome) const {
  if (options_.audit != nullptr) options_.audit->Record(caller, action, target, outcome);
}

grpc::Status SweepServiceImpl::SubmitSweep(grpc::ServerContext* context, const v1::SubmitSweepRequest* req,
                                           v1::SubmitSweepResponse* resp) {
  Caller caller;
  if (grpc::Status denied = Admit(context, Permission::kChange, &caller); !denied.ok()) {
    AuditTrail::LogRefusal(store::audit_action::kSubmit, denied);
    return denied;
  }
  if (grpc::Status bad = request_limits::Check(*req); !bad.ok()) return bad;
  // spec_yaml travels as bytes, so that a spec that is not UTF-8 reaches the spec reader and is
  // answered as a problem of the spec (line and column, spec/spec_text.h), not refused by
  // protobuf before any code of sweepd runs.
  Result<Submission> sub = server::SubmitSweep(store_, req->spec_yaml(), req->spec_path(), req->dry_run(),
                                               scheduler_.Now(), options_.limits);
  const std::string target = sub.ok() && !sub->sweep.name.empty() ? sub->sweep.name : req->spec_path().substr(0, 200);
  if (!sub.ok()) {
    if (!req->dry_run()) Audit(caller, store::audit_action::kSubmit, target, ToGrpc(sub.status()));
    return ToGrpc(sub.status());
  }
  if (!req->dry_run()) {
    Audit(caller, store::audit_action::kSubmit, target,
          sub->accepted ? grpc::Status::OK
                        : grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                       std::to_string(sub->problems.size()) + " problem(s) in the spec"));
  }
  resp->set_accepted(sub->accepted);
  for (const spec::SpecProblem& p : sub->problems) ToProto(p, resp->add_problems());
  resp->set_sweep(sub->sweep.name);
  resp->set_jobs_total(sub->counts.jobs_total);
  resp->set_jobs_new(sub->counts.jobs_new);
  resp->set_jobs_reused(sub->counts.jobs_reused);
  if (sub->accepted && (req->dry_run() || sub->sweep.jobs.size() <= kListJobsUpTo)) {
    for (const spec::ExpandedJob& j : sub->sweep.jobs) {
      v1::Job* job = resp->add_jobs();
      job->set_job_id(j.config.job_id);
      job->set_sweep(sub->sweep.name);
      job->set_config_json(ToJson(j.config).dump());
      job->set_method(j.config.kind == "base_eval" ? "base" : j.config.adapter.value("method", ""));
      job->set_track(j.config.track.name);
      job->set_seed(j.config.seed);
      job->set_trainable_params(j.trainable_params);
      job->set_kind(j.config.kind);
      for (const std::string& d : j.depends_on) job->add_depends_on(d);
      job->set_state(j.depends_on.empty() ? v1::JOB_STATE_QUEUED : v1::JOB_STATE_BLOCKED);
    }
  }
  return grpc::Status::OK;
}

grpc::Status SweepServiceImpl::GetSweep(grpc::ServerContext* context, const v1::GetSweepRequest* req,
                                        v1::GetSweepResponse* resp) {
  if (grpc::Status denied = Admit(context, Permission::kRead); !denied.ok()) return denied;
  if (grpc::Status bad = request_limits::Check(*req); !bad.ok()) return bad;
  Result<SweepRecord> sweep = store_.GetSweep(req->sweep());
  if (!sweep.ok()) return ToGrpc(sweep.status());
  Result<std::vector<JobRecord>> jobs = store_.SweepJobs(req->sweep());
  if (!jobs.ok()) return ToGrpc(jobs.status());
  ToProto(*sweep, resp->mutable_summary());
  resp->set_spec_yaml(sweep->spec_yaml);
  for (const JobRecord& j : *jobs) ToProto(j, sweep->name, resp->add_jobs());
  return grpc::Status::OK;
}

grpc::Status SweepServiceImpl::ListSweeps(grpc::ServerContext* context, const v1::ListSweepsRequest*,
                                          v1::ListSweepsResponse* resp) {
  if (grpc::Status denied = Admit(context, Permission::kRead); !denied.ok()) return denied;
  Result<std::vector<SweepRecord>> sweeps = store_.ListSweeps();
  if (!sweeps.ok()) return ToGrpc(sweeps.status());
  for (const SweepRecord& s : *sweeps) ToProto(s, resp->add_sweeps());
  return grpc::Status::OK;
}

grpc::Status SweepServiceImpl::CancelSweep(grpc::ServerContext* context, const v1::CancelSweepRequest* req,
                                           v1::CancelSweepResponse* resp) {
  Caller caller;
  if (grpc::Status denied = Admit(context, Permission::kChange, &caller); !denied.ok()) {
    AuditTrail::LogRefusal(store::audit_action::kCancel, denied);
    return denied;
  }
  if (grpc::Status bad = request_limits::Check(*req); !bad.ok()) return bad;
  Result<int64_t> n = store_.CancelSweep(req->sweep(), scheduler_.Now());
  Audit(caller, store::audit_action::kCancel, req->sweep(), n.ok() ? grpc::Status::OK : ToGrpc(n.status()));
  if (!n.ok()) return ToGrpc(n.status());
  resp->set_jobs_cancelled(*n);
  return grpc::Status::OK;
}

grpc::Status SweepServiceImpl::RetryJobs(grpc::ServerContext* context, const v1::RetryRequest* req,
                                         v1::RetryResponse* resp) {
  Caller caller;
  if (grpc::Status denied = Admit(context, Permission::kChange, &caller); !denied.ok()) {
    AuditTrail::LogRefusal(store::audit_action::kRetry, denied);
    return denied;
  }
  if (grpc::Status bad = request_limits::Check(*req); !bad.ok()) return bad;
  std::vector<std::string> ids(req->job_ids().begin(), req->job_ids().end());
  Result<int64_t> n = store_.RetryJobs(req->sweep(), ids, scheduler_.Now());
  Audit(caller, store::audit_action::kRetry, req->sweep(), n.ok() ? grpc::Status::OK : ToGrpc(n.status()));
  if (!n.ok()) return ToGrpc(n.status());
  resp->set_jobs_requeued(*n);
  return grpc::Status::OK;
}

grpc::Status SweepServiceImpl::WatchSweep(grpc::ServerContext* context, const v1::WatchSweepRequest* req,
                                          grpc::ServerWriter<v1::SweepEvent>* writer) {
  Caller caller;
  if (grpc::Status denied = Authenticate(context, Permission::kRead, &caller); !denied.ok()) return denied;
  std::optional<CallLimits::StreamSlot> slot;  // held until the watch ends, however it ends
  if (options_.call_limits != nullptr) {
    grpc::Status refused;
    slot = options_.call_limits->OpenStream(CallLimits::CallerOf(*context, caller.name), &refused);
    if (!slot) return refused;
  }
  if (grpc::Status bad = request_limits::Check(*req); !bad.ok()) return bad;
  std::map<std::string, std::pair<int64_t, JobState>> seen;  // job -> (updated_ms, state)
  std::string last_running;
  int64_t newest_update = 0;
  bool first = true;
  while (!context->IsCancelled() && !shutting_down_) {
    Result<SweepRecord> sweep = store_.GetSweep(req->sweep());
    if (!sweep.ok()) return ToGrpc(sweep.status());
    // After the snapshot only recently updated jobs are read. The margin covers a transaction
    // that took its timestamp before, but committed after, one already seen; `seen` drops repeats.
    Result<std::vector<JobRecord>> jobs =
        first ? store_.SweepJobs(req->sweep())
              : store_.SweepJobsChangedSince(req->sweep(), newest_update - kWatchMarginMs);
    if (!jobs.ok()) return ToGrpc(jobs.status());
    for (const JobRecord& j : *jobs) newest_update = std::max(newest_update, j.updated_ms);
    Result<std::vector<RunningProgress>> running = store_.RunningProgressOf(req->sweep());
    if (!running.ok()) return ToGrpc(running.status());

    v1::SweepEvent event;
    ToProto(*sweep, event.mutable_summary());
    for (const JobRecord& j : *jobs) {
      auto it = seen.find(j.job_id);
      const auto now = std::make_pair(j.updated_ms, j.state);
      if (it != seen.end() && it->second == now) continue;
      seen[j.job_id] = now;
      ToProto(j, sweep->name, event.add_changed_jobs());
    }
    AddRunning(*running, &event);
    event.set_finished(sweep->finished());
    std::string running_now;
    for (const v1::LatestMetrics& m : event.running()) running_now += m.SerializeAsString();
    if (first || event.changed_jobs_size() > 0 || event.finished() || running_now != last_running) {
      if (!writer->Write(event)) return grpc::Status::OK;
    }
    last_running = running_now;
    first = false;
    if (event.finished()) return grpc::Status::OK;
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.watch_poll_ms));
  }
  return grpc::Status::OK;
}

grpc::Status SweepServiceImpl::QueryResults(grpc::ServerContext* context, const v1::QueryResultsRequest* req,
                                            v1::QueryResultsResponse* resp) {
  if (grpc::Status denied = Admit(context, Permission::kRead); !denied.ok()) return denied;
  if (grpc::Status bad = request_limits::Check(*req); !bad.ok()) return bad;
  Result<std::vector<ResultRecord>> rows = store_.QueryResults(req->sweep());
  if (!rows.ok()) return ToGrpc(rows.status());
  for (const ResultRecord& r : *rows) {
    v1::ResultRow* row = resp->add_rows();
    row->set_job_id(r.job_id);
    row->set_sweep(r.sweep);
    row->set_config_json(r.config_json);
    row->set_result_json(r.result_json);
    row->set_finished_unix_ms(r.finished_ms);
  }
  return grpc::Status::OK;
}

grpc::Status SweepServiceImpl::GetJobLog(grpc::ServerContext* context, const v1::GetJobLogRequest* req,
                                         v1::GetJobLogResponse* resp) {
  if (grpc::Status denied = Admit(context, Permission::kRead); !denied.ok()) return denied;
  if (grpc::Status bad = request_limits::Check(*req); !bad.ok()) return bad;
  Result<JobLog> log = store_.GetJobLog(req->job_id(), req->after_seq());
  if (!log.ok()) return ToGrpc(log.status());
  for (const StoredPoint& p : log->points) {
    v1::MetricPoint* m = resp->add_points();
    m->set_seq(p.seq);
    m->set_json(p.json);
  }
  resp->set_stderr_tail(log->stderr_tail);
  resp->set_state(ToProto(log->state));
  resp->set_more(log->more);
  return grpc::Status::OK;
}

grpc::Status SweepServiceImpl::ListWorkers(grpc::ServerContext* context, const v1::ListWorkersRequest*,
                                           v1::ListWorkersResponse* resp) {
  if (grpc::Status denied = Admit(context, Permission::kRead); !denied.ok()) return denied;
  Result<std::vector<WorkerRecord>> workers = store_.ListWorkers();
  if (!workers.ok()) return ToGrpc(workers.status());
  for (const WorkerRecord& w : *workers) ToProto(w, resp->add_workers());
  return grpc::Status::OK;
}

grpc::Status SweepServiceImpl::ListAudit(grpc::ServerContext* context, const v1::ListAuditRequest* req,
                                         v1::ListAuditResponse* resp) {
  if (grpc::Status denied = Admit(context, Permission::kAudit); !denied.ok()) return denied;
  Result<std::vector<store::AuditEntry>> rows = store_.ListAudit(req->since_unix_ms());
  if (!rows.ok()) return ToGrpc(rows.status());
  for (const store::AuditEntry& e : *rows) {
    v1::AuditEntry* out = resp->add_entries();
    out->set_seq(e.seq);
    out->set_time_unix_ms(e.time_ms);
    out->set_caller(e.caller);
    out->set_role(e.role);
    out->set_action(e.action);
    out->set_target(e.target);
    out->set_outcome(e.outcome);
  }
  return grpc::Status::OK;
}

}  // namespace sweepd::server
