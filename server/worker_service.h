// WorkerService: the gRPC face of the scheduler for sweep-worker agents. Translation
// only (docs/style.md): requests become domain calls, Status becomes grpc::Status.
// gRPC's callback API: a handler hands its call to the scheduler and returns; the answer is
// sent from the store's writer thread once the call's writes are committed, so no server
// thread sits waiting for a commit.
#pragma once

#include <optional>
#include <string>

#include "server/audit_trail.h"
#include "server/auth.h"
#include "server/call_limits.h"
#include "server/scheduler.h"
#include "sweepd/v1/sweepd.grpc.pb.h"

namespace sweepd::server {

class WorkerServiceImpl final : public v1::WorkerService::CallbackService {
 public:
  // `scheduler` (and `auth`, when given) must outlive the service. With an enabled `auth`,
  // a worker's id is its token's name + '@' + a suffix sweepd picks, and it may touch only
  // the attempts leased to an id of its token.
  // `audit` records registrations, `limits` bounds each caller's request rate and open
  // metric streams; both optional, not owned.
  explicit WorkerServiceImpl(Scheduler& scheduler, const Authenticator* auth = nullptr,
                             AuditTrail* audit = nullptr, CallLimits* limits = nullptr)
      : scheduler_(scheduler), auth_(auth), audit_(audit), limits_(limits) {}

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext*, const v1::RegisterRequest*,
                                     v1::RegisterResponse*) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext*, const v1::HeartbeatRequest*,
                                      v1::HeartbeatResponse*) override;
  grpc::ServerUnaryReactor* LeaseJob(grpc::CallbackServerContext*, const v1::LeaseJobRequest*,
                                     v1::LeaseJobResponse*) override;
  grpc::ServerUnaryReactor* AttemptStarted(grpc::CallbackServerContext*, const v1::StartedRequest*,
                                           v1::StartedResponse*) override;
  grpc::ServerBidiReactor<v1::MetricBatch, v1::MetricAck>* StreamMetrics(
      grpc::CallbackServerContext*) override;
  grpc::ServerUnaryReactor* FinishAttempt(grpc::CallbackServerContext*,
                                          const v1::FinishAttemptRequest*,
                                          v1::FinishAttemptResponse*) override;

 private:
  // The worker id the caller is confined to ("" when auth is off), or the refusal (also
  // when the caller is over its request rate). The admitted caller goes to `caller`.
  std::optional<std::string> Admit(const grpc::CallbackServerContext* context, grpc::Status* denied,
                                   Caller* caller = nullptr) const;

  Scheduler& scheduler_;
  const Authenticator* auth_;  // not owned; may be null
  AuditTrail* audit_;          // not owned; may be null
  CallLimits* limits_;         // not owned; may be null
};

}  // namespace sweepd::server
