// WorkerService: the gRPC face of the scheduler for sweep-worker agents. Translation
// only (style rule 3): requests become domain calls, Status becomes grpc::Status.
// Called from gRPC's sync-server threads.
#pragma once

#include "server/scheduler.h"
#include "sweepd/v1/sweepd.grpc.pb.h"

namespace sweepd::server {

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  // `scheduler` must outlive the service.
  explicit WorkerServiceImpl(Scheduler& scheduler) : scheduler_(scheduler) {}

  grpc::Status Register(grpc::ServerContext*, const v1::RegisterRequest*, v1::RegisterResponse*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest*, v1::HeartbeatResponse*) override;
  grpc::Status LeaseJob(grpc::ServerContext*, const v1::LeaseJobRequest*, v1::LeaseJobResponse*) override;
  grpc::Status AttemptStarted(grpc::ServerContext*, const v1::StartedRequest*, v1::StartedResponse*) override;
  grpc::Status StreamMetrics(grpc::ServerContext*,
                             grpc::ServerReaderWriter<v1::MetricAck, v1::MetricBatch>*) override;
  grpc::Status FinishAttempt(grpc::ServerContext*, const v1::FinishAttemptRequest*,
                             v1::FinishAttemptResponse*) override;

 private:
  Scheduler& scheduler_;
};

}  // namespace sweepd::server
