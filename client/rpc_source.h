// RpcSource: talks to a running sweepd over gRPC (SweepService, proto/sweepd/v1).
// Translates proto messages into the client's records and nothing more.
#pragma once

#include <memory>
#include <string>

#include "client/sweep_source.h"

namespace grpc {
class ChannelCredentials;
}

namespace sweepd::client {

class RpcSource : public SweepSource {
 public:
  // Does not connect yet; the first call does, and fails with kUnavailable if it cannot.
  explicit RpcSource(std::string address);
  // Over `channel_credentials` (TLS or plaintext), sending `token` as a bearer token on every
  // call when it is not empty.
  RpcSource(std::string address, std::shared_ptr<grpc::ChannelCredentials> channel_credentials,
            std::string token);
  ~RpcSource() override;

  Result<std::vector<SweepInfo>> ListSweeps() override;
  Result<SweepDetail> GetSweep(const std::string& sweep) override;
  Result<std::vector<ResultRecord>> QueryResults(const std::string& sweep) override;
  Result<JobLog> GetJobLog(const std::string& job_id, int64_t after_seq) override;
  Result<std::vector<WorkerInfo>> ListWorkers() override;
  Result<std::vector<store::AuditEntry>> ListAudit(int64_t since_ms) override;
  Status WatchSweep(const std::string& sweep,
                    const std::function<bool(const SweepProgress&)>& on_progress) override;
  Result<SubmitOutcome> Submit(const std::string& spec_yaml, const std::string& spec_path) override;
  Result<int64_t> CancelSweep(const std::string& sweep) override;
  Result<int64_t> RetryJobs(const std::string& sweep, const std::vector<std::string>& job_ids) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sweepd::client
