// SweepService: the gRPC face of the store for researchers' clients (sweepctl).
// Translation only; WatchSweep polls the store (sweepd's single source of truth) and
// streams what changed. Called from gRPC's sync-server threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/audit_trail.h"
#include "server/auth.h"
#include "server/call_limits.h"
#include "server/scheduler.h"
#include "server/store_names.h"
#include "spec/sweep_spec.h"
#include "sweepd/v1/sweepd.grpc.pb.h"

namespace sweepd::server {

struct SweepServiceOptions {
  int64_t watch_poll_ms = 500;  // how often WatchSweep looks for changes
  spec::SpecLimits limits;
  const Authenticator* auth = nullptr;  // not owned; null: every call admitted
  AuditTrail* audit = nullptr;          // not owned; null: no trail kept
  CallLimits* call_limits = nullptr;    // not owned; null: no per-caller limits
};

class SweepServiceImpl final : public v1::SweepService::Service {
 public:
  // `store` and `scheduler` must outlive the service.
  SweepServiceImpl(Store& store, Scheduler& scheduler, SweepServiceOptions options = {})
      : store_(store), scheduler_(scheduler), options_(options) {}

  // Ends open WatchSweep streams (at shutdown).
  void Shutdown() { shutting_down_ = true; }

  grpc::Status SubmitSweep(grpc::ServerContext*, const v1::SubmitSweepRequest*, v1::SubmitSweepResponse*) override;
  grpc::Status GetSweep(grpc::ServerContext*, const v1::GetSweepRequest*, v1::GetSweepResponse*) override;
  grpc::Status ListSweeps(grpc::ServerContext*, const v1::ListSweepsRequest*, v1::ListSweepsResponse*) override;
  grpc::Status CancelSweep(grpc::ServerContext*, const v1::CancelSweepRequest*, v1::CancelSweepResponse*) override;
  grpc::Status RetryJobs(grpc::ServerContext*, const v1::RetryRequest*, v1::RetryResponse*) override;
  grpc::Status WatchSweep(grpc::ServerContext*, const v1::WatchSweepRequest*,
                          grpc::ServerWriter<v1::SweepEvent>*) override;
  grpc::Status QueryResults(grpc::ServerContext*, const v1::QueryResultsRequest*,
                            v1::QueryResultsResponse*) override;
  grpc::Status GetJobLog(grpc::ServerContext*, const v1::GetJobLogRequest*, v1::GetJobLogResponse*) override;
  grpc::Status ListWorkers(grpc::ServerContext*, const v1::ListWorkersRequest*, v1::ListWorkersResponse*) override;
  grpc::Status ListAudit(grpc::ServerContext*, const v1::ListAuditRequest*, v1::ListAuditResponse*) override;

 private:
  // OK when the call's token may `need` (or there is no auth); the refusal otherwise. The
  // admitted caller goes to `caller` when given.
  grpc::Status Authenticate(const grpc::ServerContext* context, Permission need, Caller* caller) const;
  // Authenticate, then the caller's request rate (options_.call_limits).
  grpc::Status Admit(const grpc::ServerContext* context, Permission need, Caller* caller = nullptr) const;
  // Records a state-changing call that was admitted (options_.audit).
  void Audit(const Caller& caller, std::string_view action, const std::string& target,
             const grpc::Status& outcome) const;

  Store& store_;
  Scheduler& scheduler_;
  SweepServiceOptions options_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace sweepd::server
