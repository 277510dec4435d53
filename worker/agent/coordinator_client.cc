// CoordinatorClient: WorkerService calls with deadlines and gRPC-to-Status mapping.
#include "worker/agent/coordinator_client.h"

#include <grpcpp/grpcpp.h>

#include "common/credentials.h"
#include "sweepd/v1/sweepd.grpc.pb.h"

namespace sweepd::agent {
namespace {

void AddToken(grpc::ClientContext& context, const std::string& token) {
  if (token.empty()) return;
  context.AddMetadata(credentials::kAuthorizationKey, std::string(credentials::kBearerPrefix) + token);
}

namespace pb = ::sweepd::v1;

Status FromGrpc(const grpc::Status& s, const std::string& call) {
  if (s.ok()) return Status::Ok();
  const std::string msg = call + ": " + s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::CANCELLED:
      return Status::Unavailable(msg);
    case grpc::StatusCode::INVALID_ARGUMENT:
      return Status::InvalidArgument(msg);
    case grpc::StatusCode::NOT_FOUND:
      return Status::NotFound(msg);
    default:
      return Status::FailedPrecondition(msg);
  }
}

pb::Outcome ToProto(Outcome o) {
  switch (o) {
    case Outcome::kSucceeded:
      return pb::OUTCOME_SUCCEEDED;
    case Outcome::kOutOfMemory:
      return pb::OUTCOME_OUT_OF_MEMORY;
    case Outcome::kNonFiniteLoss:
      return pb::OUTCOME_NON_FINITE_LOSS;
    case Outcome::kCrashed:
      return pb::OUTCOME_CRASHED;
    case Outcome::kTimedOut:
      return pb::OUTCOME_TIMED_OUT;
    case Outcome::kCancelled:
      return pb::OUTCOME_CANCELLED;
    case Outcome::kHandedBack:
      return pb::OUTCOME_HANDED_BACK;
    case Outcome::kInvalidConfig:
      return pb::OUTCOME_INVALID_CONFIG;
    case Outcome::kLeaseExpired:      // sweepd's own outcomes: a worker never reports them
    case Outcome::kDependencyFailed:
      return pb::OUTCOME_CRASHED;
  }
  return pb::OUTCOME_CRASHED;
}

class GrpcMetricStream : public MetricStream {
 public:
  GrpcMetricStream(pb::WorkerService::Stub& stub, const std::string& token)
      : stream_(StartStream(stub, token)) {}

  bool Send(const AttemptRef& attempt, const std::vector<SpooledPoint>& points) override {
    pb::MetricBatch batch;
    batch.set_attempt_id(attempt.attempt_id);
    batch.set_fencing_token(attempt.fencing_token);
    for (const auto& p : points) {
      auto* point = batch.add_points();
      point->set_seq(p.seq);
      point->set_json(p.json);
    }
    return stream_->Write(batch);
  }
  bool ReadAck(MetricAckInfo* ack) override {
    pb::MetricAck msg;
    if (!stream_->Read(&msg)) return false;
    ack->stored_through_seq = msg.stored_through_seq();
    ack->refused = msg.refused();
    ack->message = msg.message();
    return true;
  }
  void CloseWrites() override { stream_->WritesDone(); }
  void Cancel() override { context_.TryCancel(); }
  Status Finish() override { return FromGrpc(stream_->Finish(), "StreamMetrics"); }

 private:
  std::unique_ptr<grpc::ClientReaderWriter<pb::MetricBatch, pb::MetricAck>> StartStream(
      pb::WorkerService::Stub& stub, const std::string& token) {
    AddToken(context_, token);
    return stub.StreamMetrics(&context_);
  }

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::MetricBatch, pb::MetricAck>> stream_;
};

}  // namespace

std::shared_ptr<grpc::Channel> MakeCoordinatorChannel(
    const std::string& address, const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // Keepalive no more often than gRPC servers accept by default (5 min): more frequent
  // pings earn a GOAWAY. Liveness comes from RPC deadlines and the metric ack timeout.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 300000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  return grpc::CreateCustomChannel(address, credentials, args);
}

class CoordinatorClient::Impl {
 public:
  Impl(const std::shared_ptr<grpc::Channel>& channel, std::chrono::milliseconds timeout,
       std::string token)
      : stub(pb::WorkerService::NewStub(channel)), timeout(timeout), token(std::move(token)) {}

  void Prepare(grpc::ClientContext* context) const {
    context->set_deadline(std::chrono::system_clock::now() + timeout);
    AddToken(*context, token);
  }

  std::unique_ptr<pb::WorkerService::Stub> stub;
  std::chrono::milliseconds timeout;
  std::string token;
};

CoordinatorClient::CoordinatorClient(std::shared_ptr<grpc::Channel> channel,
                                     std::chrono::milliseconds rpc_timeout, std::string token)
    : impl_(std::make_unique<Impl>(std::move(channel), rpc_timeout, std::move(token))) {}

CoordinatorClient::~CoordinatorClient() = default;

Result<Registration> CoordinatorClient::Register(const RegisterInfo& info) {
  pb::RegisterRequest req;
  req.set_hostname(info.hostname);
  req.set_version(info.version);
  req.set_worker_id(info.worker_id);
  for (const auto& s : info.slots) {
    auto* slot = req.add_slots();
    slot->set_index(s.index);
    slot->set_device_kind(s.device.kind);
    slot->set_device_name(s.device.name);
    slot->set_memory_bytes(s.device.memory_bytes);
    slot->set_compute_capability(s.device.compute_capability);
  }
  for (const auto& [k, v] : info.labels) (*req.mutable_labels())[k] = v;
  pb::RegisterResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  SWEEPD_RETURN_IF_ERROR(FromGrpc(impl_->stub->Register(&ctx, req, &resp), "Register"));
  Registration r;
  r.worker_id = resp.worker_id();
  if (resp.heartbeat_interval_ms() > 0) {
    r.heartbeat_interval = std::chrono::milliseconds(resp.heartbeat_interval_ms());
  }
  if (resp.lease_duration_ms() > 0) {
    r.lease_duration = std::chrono::milliseconds(resp.lease_duration_ms());
  }
  if (r.worker_id.empty()) return Status::Internal("Register: sweepd returned no worker id");
  return r;
}

Result<HeartbeatReply> CoordinatorClient::Heartbeat(const std::string& worker_id,
                                                    const std::vector<AttemptRef>& running,
                                                    bool draining) {
  pb::HeartbeatRequest req;
  req.set_worker_id(worker_id);
  req.set_draining(draining);
  for (const auto& a : running) {
    auto* r = req.add_running();
    r->set_attempt_id(a.attempt_id);
    r->set_fencing_token(a.fencing_token);
  }
  pb::HeartbeatResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  SWEEPD_RETURN_IF_ERROR(FromGrpc(impl_->stub->Heartbeat(&ctx, req, &resp), "Heartbeat"));
  HeartbeatReply reply;
  reply.cancel_attempts.assign(resp.cancel_attempts().begin(), resp.cancel_attempts().end());
  reply.lost_attempts.assign(resp.lost_attempts().begin(), resp.lost_attempts().end());
  reply.reregister = resp.reregister();
  return reply;
}

Result<Lease> CoordinatorClient::LeaseJob(const std::string& worker_id, const SlotInfo& slot,
                                          int64_t free_memory_bytes, int free_devices) {
  pb::LeaseJobRequest req;
  req.set_free_devices(free_devices);
  req.set_worker_id(worker_id);
  req.set_slot_index(slot.index);
  req.set_device_kind(slot.device.kind);
  req.set_free_memory_bytes(free_memory_bytes);
  pb::LeaseJobResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  SWEEPD_RETURN_IF_ERROR(FromGrpc(impl_->stub->LeaseJob(&ctx, req, &resp), "LeaseJob"));
  Lease lease;
  lease.granted = resp.granted();
  if (resp.retry_after_ms() > 0)
    lease.retry_after = std::chrono::milliseconds(resp.retry_after_ms());
  if (!lease.granted) return lease;
  lease.job_id = resp.job().job_id();
  lease.job_kind = resp.job().kind();
  lease.config_json = resp.job().config_json();
  lease.attempt_id = resp.attempt_id();
  lease.fencing_token = resp.fencing_token();
  lease.attempt_number = resp.attempt_number() > 0 ? resp.attempt_number() : 1;
  if (lease.job_id.empty() || lease.attempt_id.empty()) {
    return Status::Internal("LeaseJob: sweepd granted a lease without job or attempt id");
  }
  return lease;
}

Result<bool> CoordinatorClient::AttemptStarted(const AttemptRef& attempt) {
  pb::StartedRequest req;
  req.set_attempt_id(attempt.attempt_id);
  req.set_fencing_token(attempt.fencing_token);
  pb::StartedResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  SWEEPD_RETURN_IF_ERROR(FromGrpc(impl_->stub->AttemptStarted(&ctx, req, &resp), "AttemptStarted"));
  return resp.accepted();
}

Result<FinishReply> CoordinatorClient::FinishAttempt(const FinishReport& report) {
  pb::FinishAttemptRequest req;
  req.set_attempt_id(report.attempt.attempt_id);
  req.set_fencing_token(report.attempt.fencing_token);
  req.set_outcome(ToProto(report.outcome));
  req.set_exit_code(report.exit_code);
  req.set_signal(report.signal);
  req.set_stderr_tail(report.stderr_tail);
  req.set_result_json(report.result_json);
  req.set_last_metric_seq(report.last_metric_seq);
  pb::FinishAttemptResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  SWEEPD_RETURN_IF_ERROR(FromGrpc(impl_->stub->FinishAttempt(&ctx, req, &resp), "FinishAttempt"));
  return FinishReply{resp.accepted(), resp.message()};
}

std::unique_ptr<MetricStream> CoordinatorClient::OpenMetricStream() {
  return std::make_unique<GrpcMetricStream>(*impl_->stub, impl_->token);
}

}  // namespace sweepd::agent
