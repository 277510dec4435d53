// WorkerService RPCs -> Scheduler calls.
#include "server/worker_service.h"

#include "server/proto_convert.h"

namespace sweepd::server {

grpc::Status WorkerServiceImpl::Register(grpc::ServerContext*, const v1::RegisterRequest* req,
                                         v1::RegisterResponse* resp) {
  WorkerRecord w;
  w.worker_id = req->worker_id();
  w.hostname = req->hostname();
  w.version = req->version();
  for (const v1::Slot& s : req->slots()) {
    w.slots.push_back({s.index(), s.device_kind(), s.device_name(), s.memory_bytes(), s.compute_capability()});
  }
  for (const auto& [k, v] : req->labels()) w.labels[k] = v;
  Result<std::string> id = scheduler_.Register(w);
  if (!id.ok()) return ToGrpc(id.status());
  resp->set_worker_id(*id);
  resp->set_heartbeat_interval_ms(scheduler_.options().heartbeat_interval_ms);
  resp->set_lease_duration_ms(scheduler_.options().lease_ms);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* req,
                                          v1::HeartbeatResponse* resp) {
  HeartbeatReport report;
  report.worker_id = req->worker_id();
  report.draining = req->draining();
  for (const auto& r : req->running()) report.running.emplace_back(r.attempt_id(), r.fencing_token());
  Result<HeartbeatResult> result = scheduler_.Heartbeat(report);
  if (!result.ok()) return ToGrpc(result.status());
  for (const std::string& a : result->cancel_attempts) resp->add_cancel_attempts(a);
  for (const std::string& a : result->lost_attempts) resp->add_lost_attempts(a);
  resp->set_lease_expires_unix_ms(result->lease_expires_ms);
  resp->set_reregister(!result->known_worker);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::LeaseJob(grpc::ServerContext*, const v1::LeaseJobRequest* req,
                                         v1::LeaseJobResponse* resp) {
  LeaseRequest r{req->worker_id(), req->slot_index(), req->device_kind(), req->free_memory_bytes()};
  Result<LeaseDecision> decision = scheduler_.LeaseJob(r);
  if (!decision.ok()) return ToGrpc(decision.status());
  if (!decision->lease) {
    resp->set_granted(false);
    resp->set_retry_after_ms(decision->retry_after_ms);
    return grpc::Status::OK;
  }
  const Lease& lease = *decision->lease;
  resp->set_granted(true);
  ToProto(lease.job, "", resp->mutable_job());
  resp->set_attempt_id(lease.attempt_id);
  resp->set_fencing_token(lease.fencing_token);
  resp->set_lease_expires_unix_ms(lease.expires_ms);
  resp->set_attempt_number(lease.attempt_number);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::AttemptStarted(grpc::ServerContext*, const v1::StartedRequest* req,
                                               v1::StartedResponse* resp) {
  Status s = scheduler_.Started(req->attempt_id(), req->fencing_token());
  if (s.code() == StatusCode::kFailedPrecondition || s.code() == StatusCode::kNotFound) {
    resp->set_accepted(false);
    return grpc::Status::OK;
  }
  if (!s.ok()) return ToGrpc(s);
  resp->set_accepted(true);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::StreamMetrics(grpc::ServerContext*,
                                              grpc::ServerReaderWriter<v1::MetricAck, v1::MetricBatch>* stream) {
  v1::MetricBatch batch;
  while (stream->Read(&batch)) {
    std::vector<MetricPointIn> points;
    points.reserve(batch.points_size());
    for (const v1::MetricPoint& p : batch.points()) points.push_back({p.seq(), p.json()});
    Result<int64_t> through = scheduler_.StoreMetrics(batch.attempt_id(), batch.fencing_token(), points);
    v1::MetricAck ack;
    if (through.ok()) {
      ack.set_stored_through_seq(*through);
    } else if (through.status().code() == StatusCode::kFailedPrecondition ||
               through.status().code() == StatusCode::kNotFound) {
      ack.set_refused(true);
      ack.set_message(through.status().message());
    } else {
      return ToGrpc(through.status());  // e.g. database busy: the worker reconnects and resends
    }
    if (!stream->Write(ack)) break;
  }
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::FinishAttempt(grpc::ServerContext*, const v1::FinishAttemptRequest* req,
                                              v1::FinishAttemptResponse* resp) {
  FinishReport r;
  r.attempt_id = req->attempt_id();
  r.fencing_token = req->fencing_token();
  r.outcome = OutcomeName(req->outcome());
  r.exit_code = req->exit_code();
  r.signal = req->signal();
  r.stderr_tail = req->stderr_tail();
  r.result_json = req->result_json();
  r.last_metric_seq = req->last_metric_seq();
  Status s = scheduler_.Finish(r);
  if (s.code() == StatusCode::kFailedPrecondition || s.code() == StatusCode::kNotFound) {
    resp->set_accepted(false);
    resp->set_message(s.message());
    return grpc::Status::OK;
  }
  if (!s.ok()) return ToGrpc(s);
  resp->set_accepted(true);
  return grpc::Status::OK;
}

}  // namespace sweepd::server
