// WorkerService RPCs -> Scheduler calls (gRPC callback API; answers come from the store's
// writer thread after COMMIT).
#include "server/worker_service.h"

#include <algorithm>
#include <string_view>

#include "common/credentials.h"
#include "common/metric_line.h"
#include "server/proto_convert.h"
#include "server/request_limits.h"

namespace sweepd::server {
namespace {

// A lost lease is an answer ("stop"), not an error of the call.
bool IsRefusal(const Status& s) {
  return s.code() == StatusCode::kFailedPrecondition || s.code() == StatusCode::kNotFound;
}

// With auth on, a worker's id is its token's NAME, '@' and a per-process suffix: one token
// may serve several processes (the replicas of a Deployment), each its own worker, and
// '@' cannot occur in a name, so no token can claim another's ids.
bool OwnedBy(const std::string& worker_id, const std::string& name) {
  return worker_id.size() > name.size() + 1 && worker_id.compare(0, name.size(), name) == 0 &&
         worker_id[name.size()] == '@';
}

grpc::Status NotYours(const std::string& what, const std::string& worker) {
  return {grpc::StatusCode::PERMISSION_DENIED,
          what.substr(0, 80) + " does not belong to worker '" + worker + "' (its token's name)"};
}

// OK when `worker` is unconfined ("") or the attempt is leased to it. An unknown attempt is
// let through: the scheduler refuses it as before.
grpc::Status CheckAttemptOwner(Scheduler& scheduler, const std::string& worker,
                               const std::string& attempt_id) {
  if (worker.empty()) return grpc::Status::OK;
  Result<std::string> owner = scheduler.WorkerOfAttempt(attempt_id);
  if (!owner.ok()) return owner.status().code() == StatusCode::kNotFound ? grpc::Status::OK : ToGrpc(owner.status());
  return OwnedBy(*owner, worker) ? grpc::Status::OK : NotYours("attempt '" + attempt_id + "'", worker);
}

grpc::ServerUnaryReactor* Refuse(grpc::ServerUnaryReactor* reactor, const grpc::Status& status) {
  reactor->Finish(status);
  return reactor;
}

// A batch over the limits of one call (common/metric_line.h) is refused whole, naming the
// limit; sweep-worker splits its batches to fit.
grpc::Status CheckBatchLimits(const v1::MetricBatch& batch) {
  const auto refuse = [](const std::string& what) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "metric batch refused: " + what + " (docs/metrics.md, \"Limits\")");
  };
  if (static_cast<size_t>(batch.points_size()) > metric_limit::kCallLines) {
    return refuse(std::to_string(batch.points_size()) + " lines, over the limit of " +
                  std::to_string(metric_limit::kCallLines) + " a call");
  }
  size_t bytes = 0;
  for (const v1::MetricPoint& p : batch.points()) {
    if (p.seq() > metric_limit::kAttemptSeqs) {
      return refuse("seq " + std::to_string(p.seq()) + ", over the limit of " +
                    std::to_string(metric_limit::kAttemptLines) + " lines an attempt");
    }
    bytes += std::min(p.json().size(), metric_limit::kLineBytes);  // longer ones are cut below
  }
  if (bytes > metric_limit::kCallBytes) {
    return refuse(std::to_string(bytes) + " bytes of lines, over the limit of " +
                  std::to_string(metric_limit::kCallBytes) + " a call");
  }
  return grpc::Status::OK;
}

// The point as stored: a line that is not a metric line becomes an "error" line saying why
// (with an excerpt), so what sweepd keeps is bounded and reads for everyone after it.
MetricPointIn ReadPoint(v1::MetricPoint& p) {
  MetricPointIn point{p.seq(), std::move(*p.mutable_json())};  // batch_ is read into again
  point.line = MetricLine::Read(point.json);
  if (!point.line->ok()) {
    point.json = MetricErrorLine(
        "line " + std::to_string(p.seq()) + ": " + point.line->status().message(), point.json);
    point.line = MetricLine::Read(point.json);
  }
  return point;
}

// A stream refused before its first read: finishes at once with `status`.
class RefusedStream final : public grpc::ServerBidiReactor<v1::MetricBatch, v1::MetricAck> {
 public:
  explicit RefusedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

// One metric stream: read a batch, store it, write the ack, read the next. gRPC owns the
// reactor from StreamMetrics until OnDone, which deletes it (the callback API's contract).
class MetricStream final : public grpc::ServerBidiReactor<v1::MetricBatch, v1::MetricAck> {
 public:
  // `worker`: the id the stream is confined to ("" unconfined); `slot`: the stream's place
  // in its caller's limit, given back when the stream is done.
  MetricStream(Scheduler& scheduler, std::string worker, std::optional<CallLimits::StreamSlot> slot)
      : scheduler_(scheduler), worker_(std::move(worker)), slot_(std::move(slot)) {
    StartRead(&batch_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);  // the worker closed its side
    if (grpc::Status bad = request_limits::Check(batch_); !bad.ok()) return Finish(bad);
    if (batch_.attempt_id() != checked_attempt_) {
      if (grpc::Status s = CheckAttemptOwner(scheduler_, worker_, batch_.attempt_id()); !s.ok()) {
        return Finish(s);
      }
      checked_attempt_ = batch_.attempt_id();
    }
    if (grpc::Status s = CheckBatchLimits(batch_); !s.ok()) return Finish(s);
    std::vector<MetricPointIn> points;
    points.reserve(batch_.points_size());
    for (v1::MetricPoint& p : *batch_.mutable_points()) {
      points.push_back(ReadPoint(p));
    }
    scheduler_.StoreMetricsAsync(batch_.attempt_id(), batch_.fencing_token(), std::move(points),
                                 [this](Result<int64_t> through) { Answer(through); });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);
    StartRead(&batch_);
  }

  void OnDone() override { delete this; }

 private:
  void Answer(const Result<int64_t>& through) {
    ack_.Clear();
    if (through.ok()) {
      ack_.set_stored_through_seq(*through);
    } else if (IsRefusal(through.status())) {
      ack_.set_refused(true);
      ack_.set_message(through.status().message());
    } else {
      // e.g. the database is unavailable: the worker reconnects and resends.
      return Finish(ToGrpc(through.status()));
    }
    StartWrite(&ack_);
  }

  Scheduler& scheduler_;
  const std::string worker_;
  std::optional<CallLimits::StreamSlot> slot_;
  std::string checked_attempt_;  // the last attempt found to be the worker's
  v1::MetricBatch batch_;
  v1::MetricAck ack_;
};

}  // namespace

std::optional<std::string> WorkerServiceImpl::Admit(const grpc::CallbackServerContext* context,
                                                    grpc::Status* denied, Caller* caller) const {
  Caller admitted{"", Role::kAdmin};
  if (auth_ != nullptr) {
    std::optional<Caller> c = auth_->Admit(*context, Permission::kWork, denied);
    if (!c) return std::nullopt;
    admitted = std::move(*c);
  }
  if (limits_ != nullptr) {
    *denied = limits_->AdmitRequest(CallLimits::CallerOf(*context, admitted.name));
    if (!denied->ok()) return std::nullopt;
  }
  std::string name = admitted.name;  // "" without an auth file: unconfined
  if (caller != nullptr) *caller = std::move(admitted);
  return name;
}

grpc::ServerUnaryReactor* WorkerServiceImpl::Register(grpc::CallbackServerContext* ctx,
                                                      const v1::RegisterRequest* req,
                                                      v1::RegisterResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  grpc::Status denied;
  Caller caller;
  const std::optional<std::string> worker = Admit(ctx, &denied, &caller);
  if (!worker) {
    AuditTrail::LogRefusal(store::audit_action::kRegister, denied);
    return Refuse(reactor, denied);
  }
  if (grpc::Status bad = request_limits::Check(*req); !bad.ok()) return Refuse(reactor, bad);
  WorkerRecord w;
  w.worker_id = req->worker_id();
  if (!worker->empty() && w.worker_id.empty()) {
    Result<std::string> suffix = credentials::NewToken();
    if (!suffix.ok()) return Refuse(reactor, ToGrpc(suffix.status()));
    w.worker_id = *worker + "@" + suffix->substr(0, 8);
  }
  if (!worker->empty() && !OwnedBy(w.worker_id, *worker)) {
    const grpc::Status refused = NotYours("worker id '" + w.worker_id + "'", *worker);
    if (audit_ != nullptr) audit_->RecordAsync(caller, store::audit_action::kRegister, w.worker_id, refused);
    return Refuse(reactor, refused);
  }
  w.hostname = req->hostname();
  w.version = req->version();
  for (const v1::Slot& s : req->slots()) {
    w.slots.push_back(
        {s.index(), s.device_kind(), s.device_name(), s.memory_bytes(), s.compute_capability()});
  }
  for (const auto& [k, v] : req->labels()) w.labels[k] = v;
  std::string asked = w.worker_id.substr(0, 200);
  scheduler_.RegisterAsync(std::move(w), [this, reactor, resp, caller, asked](Result<std::string> id) {
    if (audit_ != nullptr) {
      audit_->RecordAsync(caller, store::audit_action::kRegister, id.ok() ? *id : asked,
                          id.ok() ? grpc::Status::OK : ToGrpc(id.status()));
    }
    if (!id.ok()) return reactor->Finish(ToGrpc(id.status()));
    resp->set_worker_id(*id);
    resp->set_heartbeat_interval_ms(scheduler_.options().heartbeat_interval_ms);
    resp->set_lease_duration_ms(scheduler_.options().lease_ms);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* WorkerServiceImpl::Heartbeat(grpc::CallbackServerContext* ctx,
                                                       const v1::HeartbeatRequest* req,
                                                       v1::HeartbeatResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  grpc::Status denied;
  const std::optional<std::string> worker = Admit(ctx, &denied);
  if (!worker) return Refuse(reactor, denied);
  if (grpc::Status bad = request_limits::Check(*req); !bad.ok()) return Refuse(reactor, bad);
  if (!worker->empty() && !OwnedBy(req->worker_id(), *worker)) {
    return Refuse(reactor, NotYours("worker id '" + req->worker_id() + "'", *worker));
  }
  HeartbeatReport report;
  report.worker_id = req->worker_id();
  report.draining = req->draining();
  for (const auto& r : req->running()) {
    // One attempt of another worker refuses the whole heartbeat: no lease is extended.
    if (grpc::Status s = CheckAttemptOwner(scheduler_, *worker, r.attempt_id()); !s.ok()) {
      return Refuse(reactor, s);
    }
    report.running.emplace_back(r.attempt_id(), r.fencing_token());
  }
  scheduler_.HeartbeatAsync(std::move(report), [reactor, resp](Result<HeartbeatResult> result) {
    if (!result.ok()) return reactor->Finish(ToGrpc(result.status()));
    for (const std::string& a : result->cancel_attempts) resp->add_cancel_attempts(a);
    for (const std::string& a : result->lost_attempts) resp->add_lost_attempts(a);
    resp->set_lease_expires_unix_ms(result->lease_expires_ms);
    resp->set_reregister(!result->known_worker);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* WorkerServiceImpl::LeaseJob(grpc::CallbackServerContext* ctx,
                                                      const v1::LeaseJobRequest* req,
                                                      v1::LeaseJobResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  grpc::Status denied;
  const std::optional<std::string> worker = Admit(ctx, &denied);
  if (!worker) return Refuse(reactor, denied);
  if (grpc::Status bad = request_limits::Check(*req); !bad.ok()) return Refuse(reactor, bad);
  if (!worker->empty() && !OwnedBy(req->worker_id(), *worker)) {
    return Refuse(reactor, NotYours("worker id '" + req->worker_id() + "'", *worker));
  }
  LeaseRequest r{req->worker_id(), req->slot_index(), req->device_kind(), req->free_memory_bytes(),
                 std::max<int64_t>(1, req->free_devices())};
  scheduler_.LeaseJobAsync(std::move(r), [reactor, resp](Result<LeaseDecision> decision) {
    if (!decision.ok()) return reactor->Finish(ToGrpc(decision.status()));
    if (!decision->lease) {
      resp->set_granted(false);
      resp->set_retry_after_ms(decision->retry_after_ms);
      return reactor->Finish(grpc::Status::OK);
    }
    const Lease& lease = *decision->lease;
    resp->set_granted(true);
    ToProto(lease.job, "", resp->mutable_job());
    resp->set_attempt_id(lease.attempt_id);
    resp->set_fencing_token(lease.fencing_token);
    resp->set_lease_expires_unix_ms(lease.expires_ms);
    resp->set_attempt_number(lease.attempt_number);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* WorkerServiceImpl::AttemptStarted(grpc::CallbackServerContext* ctx,
                                                            const v1::StartedRequest* req,
                                                            v1::StartedResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  grpc::Status denied;
  const std::optional<std::string> worker = Admit(ctx, &denied);
  if (!worker) return Refuse(reactor, denied);
  if (grpc::Status bad = request_limits::Check(*req); !bad.ok()) return Refuse(reactor, bad);
  if (grpc::Status s = CheckAttemptOwner(scheduler_, *worker, req->attempt_id()); !s.ok()) {
    return Refuse(reactor, s);
  }
  scheduler_.StartedAsync(req->attempt_id(), req->fencing_token(), [reactor, resp](Status s) {
    if (!s.ok() && !IsRefusal(s)) return reactor->Finish(ToGrpc(s));
    resp->set_accepted(s.ok());
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerBidiReactor<v1::MetricBatch, v1::MetricAck>* WorkerServiceImpl::StreamMetrics(
    grpc::CallbackServerContext* ctx) {
  grpc::Status denied;
  Caller caller;
  if (auth_ != nullptr) {
    std::optional<Caller> c = auth_->Admit(*ctx, Permission::kWork, &denied);
    if (!c) return new RefusedStream(denied);  // deleted by its OnDone
    caller = std::move(*c);
  }
  std::optional<CallLimits::StreamSlot> slot;
  if (limits_ != nullptr) {
    slot = limits_->OpenStream(CallLimits::CallerOf(*ctx, caller.name), &denied);
    if (!slot) return new RefusedStream(denied);
  }
  return new MetricStream(scheduler_, caller.name, std::move(slot));  // deleted by its OnDone
}

grpc::ServerUnaryReactor* WorkerServiceImpl::FinishAttempt(grpc::CallbackServerContext* ctx,
                                                           const v1::FinishAttemptRequest* req,
                                                           v1::FinishAttemptResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  grpc::Status denied;
  const std::optional<std::string> worker = Admit(ctx, &denied);
  if (!worker) return Refuse(reactor, denied);
  if (grpc::Status bad = request_limits::Check(*req); !bad.ok()) return Refuse(reactor, bad);
  if (grpc::Status s = CheckAttemptOwner(scheduler_, *worker, req->attempt_id()); !s.ok()) {
    return Refuse(reactor, s);
  }
  FinishReport r;
  r.attempt_id = req->attempt_id();
  r.fencing_token = req->fencing_token();
  r.outcome = FromProto(req->outcome());
  r.exit_code = req->exit_code();
  r.signal = req->signal();
  // The tail a worker sends is at most metric_limit::kStderrTailBytes; keep no more, cut
  // where a UTF-8 sequence starts (gRPC checked that the text is UTF-8).
  std::string_view tail = req->stderr_tail();
  if (tail.size() > metric_limit::kStderrTailBytes) {
    tail.remove_prefix(tail.size() - metric_limit::kStderrTailBytes);
    while (!tail.empty() && (static_cast<unsigned char>(tail.front()) & 0xC0) == 0x80) {
      tail.remove_prefix(1);
    }
  }
  r.stderr_tail = std::string(tail);
  r.result_json = req->result_json();
  r.last_metric_seq = req->last_metric_seq();
  scheduler_.FinishAsync(std::move(r), [reactor, resp](Status s) {
    if (IsRefusal(s)) {
      resp->set_accepted(false);
      resp->set_message(s.message());
      return reactor->Finish(grpc::Status::OK);
    }
    if (!s.ok()) return reactor->Finish(ToGrpc(s));
    resp->set_accepted(true);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace sweepd::server
