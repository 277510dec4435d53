// gRPC client of SweepService: each call has a deadline; transport failures become
// kUnavailable with a message that names the address and the next step.
#include "client/rpc_source.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <set>

#include "common/credentials.h"
#include "sweepd/v1/sweepd.grpc.pb.h"

namespace sweepd::client {
namespace {

namespace pb = ::sweepd::v1;

constexpr auto kCallDeadline = std::chrono::seconds(30);

std::string StateName(pb::JobState s) {
  switch (s) {
    case pb::JOB_STATE_BLOCKED: return "blocked";
    case pb::JOB_STATE_QUEUED: return "queued";
    case pb::JOB_STATE_LEASED: return "leased";
    case pb::JOB_STATE_RUNNING: return "running";
    case pb::JOB_STATE_SUCCEEDED: return "succeeded";
    case pb::JOB_STATE_FAILED: return "failed";
    case pb::JOB_STATE_CANCELLED: return "cancelled";
    default: return "unknown";
  }
}

SweepInfo FromProto(const pb::SweepSummary& s) {
  SweepInfo info;
  info.name = s.name();
  info.submitted_ms = s.submitted_unix_ms();
  info.total_jobs = s.total_jobs();
  info.priority = s.priority();
  info.cancelled = s.cancelled();
  for (const auto& c : s.counts()) info.counts[StateName(c.state())] += c.count();
  return info;
}

JobInfo FromProto(const pb::Job& j) {
  JobInfo job;
  job.job_id = j.job_id();
  job.sweep = j.sweep();
  job.kind = j.kind();
  job.state = StateName(j.state());
  job.method = j.method();
  job.track = j.track();
  job.seed = j.seed();
  job.trainable_params = j.trainable_params();
  job.attempts = j.attempts();
  job.last_outcome = j.last_outcome();
  job.last_error = j.last_error();
  job.config_json = j.config_json();
  job.depends_on.assign(j.depends_on().begin(), j.depends_on().end());
  job.updated_ms = j.updated_unix_ms();
  return job;
}

nlohmann::json ParseOrString(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::json(text) : j;
}

}  // namespace

struct RpcSource::Impl {
  std::string address;
  std::string token;  // sent, never printed
  std::unique_ptr<pb::SweepService::Stub> stub;

  void Prepare(grpc::ClientContext& ctx) const {
    ctx.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    Authorize(ctx);
  }
  void Authorize(grpc::ClientContext& ctx) const {
    if (token.empty()) return;
    ctx.AddMetadata(credentials::kAuthorizationKey, std::string(credentials::kBearerPrefix) + token);
  }
  Status Translate(const grpc::Status& s) const {
    switch (s.error_code()) {
      case grpc::StatusCode::OK: return Status::Ok();
      case grpc::StatusCode::UNAVAILABLE:
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        return Status::Unavailable("cannot reach sweepd at " + address + " (" + s.error_message() +
                                   "); is it running? Pass --coordinator HOST:PORT, set "
                                   "SWEEPD_ADDR, or read a database file with --db PATH");
      case grpc::StatusCode::UNAUTHENTICATED:
        return Status::FailedPrecondition("sweepd at " + address + " refused (UNAUTHENTICATED): " +
                                          s.error_message());
      case grpc::StatusCode::PERMISSION_DENIED:
        return Status::FailedPrecondition("sweepd at " + address + " refused (PERMISSION_DENIED): " +
                                          s.error_message());
      case grpc::StatusCode::RESOURCE_EXHAUSTED:  // a per-caller limit: not now, later
        return Status::FailedPrecondition("sweepd at " + address + " refused (RESOURCE_EXHAUSTED): " +
                                          s.error_message());
      case grpc::StatusCode::NOT_FOUND: return Status::NotFound(s.error_message());
      case grpc::StatusCode::INVALID_ARGUMENT: return Status::InvalidArgument(s.error_message());
      case grpc::StatusCode::ALREADY_EXISTS: return Status::AlreadyExists(s.error_message());
      case grpc::StatusCode::FAILED_PRECONDITION: return Status::FailedPrecondition(s.error_message());
      case grpc::StatusCode::UNIMPLEMENTED:
        return Status::Internal("sweepd at " + address + " does not offer this call (" +
                                s.error_message() + "); is it an older version?");
      default: return Status::Internal("sweepd at " + address + ": " + s.error_message());
    }
  }
};

RpcSource::RpcSource(std::string address)
    : RpcSource(std::move(address), grpc::InsecureChannelCredentials(), "") {}

RpcSource::RpcSource(std::string address,
                     std::shared_ptr<grpc::ChannelCredentials> channel_credentials, std::string token)
    : impl_(std::make_unique<Impl>()) {
  impl_->address = std::move(address);
  impl_->token = std::move(token);
  impl_->stub = pb::SweepService::NewStub(grpc::CreateChannel(impl_->address, channel_credentials));
}

RpcSource::~RpcSource() = default;

Result<std::vector<SweepInfo>> RpcSource::ListSweeps() {
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  pb::ListSweepsResponse resp;
  SWEEPD_RETURN_IF_ERROR(impl_->Translate(impl_->stub->ListSweeps(&ctx, {}, &resp)));
  std::vector<SweepInfo> out;
  for (const auto& s : resp.sweeps()) out.push_back(FromProto(s));
  return out;
}

Result<SweepDetail> RpcSource::GetSweep(const std::string& sweep) {
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  pb::GetSweepRequest req;
  req.set_sweep(sweep);
  pb::GetSweepResponse resp;
  SWEEPD_RETURN_IF_ERROR(impl_->Translate(impl_->stub->GetSweep(&ctx, req, &resp)));
  SweepDetail detail{FromProto(resp.summary()), {}};
  for (const auto& j : resp.jobs()) detail.jobs.push_back(FromProto(j));
  return detail;
}

Result<std::vector<ResultRecord>> RpcSource::QueryResults(const std::string& sweep) {
  if (sweep.empty()) {
    // sweepd answers per sweep; every sweep's results, a job shared by sweeps once.
    auto sweeps = ListSweeps();
    if (!sweeps.ok()) return sweeps.status();
    std::vector<ResultRecord> all;
    std::set<std::string> seen;
    for (const auto& s : *sweeps) {
      auto rows = QueryResults(s.name);
      if (!rows.ok()) return rows.status();
      for (auto& r : *rows) {
        if (seen.insert(r.job_id).second) all.push_back(std::move(r));
      }
    }
    return all;
  }
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  pb::QueryResultsRequest req;
  req.set_sweep(sweep);
  pb::QueryResultsResponse resp;
  SWEEPD_RETURN_IF_ERROR(impl_->Translate(impl_->stub->QueryResults(&ctx, req, &resp)));
  std::vector<ResultRecord> out;
  for (const auto& r : resp.rows()) {
    out.push_back({r.job_id(), r.sweep(), ParseOrString(r.config_json()),
                   ParseOrString(r.result_json()), r.finished_unix_ms()});
  }
  return out;
}

Result<JobLog> RpcSource::GetJobLog(const std::string& job_id, int64_t after_seq) {
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  pb::GetJobLogRequest req;
  req.set_job_id(job_id);
  req.set_after_seq(after_seq);
  pb::GetJobLogResponse resp;
  SWEEPD_RETURN_IF_ERROR(impl_->Translate(impl_->stub->GetJobLog(&ctx, req, &resp)));
  JobLog log;
  for (const auto& p : resp.points()) log.points.push_back({p.seq(), p.json()});
  log.stderr_tail = resp.stderr_tail();
  log.state = StateName(resp.state());
  log.more = resp.more();
  return log;
}

Result<std::vector<store::AuditEntry>> RpcSource::ListAudit(int64_t since_ms) {
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  pb::ListAuditRequest req;
  req.set_since_unix_ms(since_ms);
  pb::ListAuditResponse resp;
  SWEEPD_RETURN_IF_ERROR(impl_->Translate(impl_->stub->ListAudit(&ctx, req, &resp)));
  std::vector<store::AuditEntry> out;
  for (const auto& e : resp.entries()) {
    out.push_back({e.seq(), e.time_unix_ms(), e.caller(), e.role(), e.action(), e.target(), e.outcome()});
  }
  return out;
}

Result<std::vector<WorkerInfo>> RpcSource::ListWorkers() {
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  pb::ListWorkersResponse resp;
  SWEEPD_RETURN_IF_ERROR(impl_->Translate(impl_->stub->ListWorkers(&ctx, {}, &resp)));
  std::vector<WorkerInfo> out;
  for (const auto& w : resp.workers()) {
    WorkerInfo info;
    info.worker_id = w.worker_id();
    info.hostname = w.hostname();
    info.state = w.state();
    info.last_heartbeat_ms = w.last_heartbeat_unix_ms();
    for (const auto& s : w.slots()) {
      std::string text = s.device_kind() + ":" + std::to_string(s.index());
      if (!s.device_name().empty()) text += " " + s.device_name();
      info.slots.push_back(text);
    }
    for (const auto& [k, v] : w.labels()) info.labels[k] = v;
    info.running_jobs.assign(w.running_jobs().begin(), w.running_jobs().end());
    out.push_back(std::move(info));
  }
  return out;
}

Status RpcSource::WatchSweep(const std::string& sweep,
                             const std::function<bool(const SweepProgress&)>& on_progress) {
  grpc::ClientContext ctx;  // no deadline: a sweep runs for as long as it runs
  impl_->Authorize(ctx);
  pb::WatchSweepRequest req;
  req.set_sweep(sweep);
  auto reader = impl_->stub->WatchSweep(&ctx, req);
  pb::SweepEvent event;
  // Every event carries the whole summary and the running jobs' latest metrics.
  bool finished = false;
  while (reader->Read(&event)) {
    SweepProgress progress;
    progress.summary = FromProto(event.summary());
    for (const auto& m : event.running()) {
      RunningMetrics r{m.job_id(), m.step(), m.total_steps(), m.loss(), m.tokens_per_second(), m.worker()};
      progress.running.push_back(r);
    }
    progress.finished = event.finished() || progress.summary.Finished();
    finished = progress.finished;
    if (!on_progress(progress)) {
      ctx.TryCancel();
      reader->Finish();
      return Status::Ok();
    }
    if (finished) break;
  }
  if (finished) {
    ctx.TryCancel();
    reader->Finish();
    return Status::Ok();
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) return impl_->Translate(st);
  return Status::Unavailable("sweepd at " + impl_->address +
                             " ended the progress stream before the sweep finished; run "
                             "`sweepctl watch " + sweep + "` again");
}

Result<SubmitOutcome> RpcSource::Submit(const std::string& spec_yaml, const std::string& spec_path) {
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  pb::SubmitSweepRequest req;
  req.set_spec_yaml(spec_yaml);
  req.set_spec_path(spec_path);
  pb::SubmitSweepResponse resp;
  SWEEPD_RETURN_IF_ERROR(impl_->Translate(impl_->stub->SubmitSweep(&ctx, req, &resp)));
  SubmitOutcome out;
  out.accepted = resp.accepted();
  for (const auto& p : resp.problems()) {
    std::string where = p.file();
    if (p.line() > 0) where += ":" + std::to_string(p.line()) + ":" + std::to_string(p.column());
    out.problems.push_back(where + ": " + (p.field().empty() ? "" : p.field() + ": ") + p.message());
  }
  out.sweep = resp.sweep();
  out.jobs_total = resp.jobs_total();
  out.jobs_new = resp.jobs_new();
  out.jobs_reused = resp.jobs_reused();
  return out;
}

Result<int64_t> RpcSource::CancelSweep(const std::string& sweep) {
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  pb::CancelSweepRequest req;
  req.set_sweep(sweep);
  pb::CancelSweepResponse resp;
  SWEEPD_RETURN_IF_ERROR(impl_->Translate(impl_->stub->CancelSweep(&ctx, req, &resp)));
  return static_cast<int64_t>(resp.jobs_cancelled());
}

Result<int64_t> RpcSource::RetryJobs(const std::string& sweep, const std::vector<std::string>& job_ids) {
  grpc::ClientContext ctx;
  impl_->Prepare(ctx);
  pb::RetryRequest req;
  req.set_sweep(sweep);
  for (const auto& id : job_ids) req.add_job_ids(id);
  pb::RetryResponse resp;
  SWEEPD_RETURN_IF_ERROR(impl_->Translate(impl_->stub->RetryJobs(&ctx, req, &resp)));
  return static_cast<int64_t>(resp.jobs_requeued());
}

}  // namespace sweepd::client
