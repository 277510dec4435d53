// CoordinatorClient: the agent's side of sweepd's WorkerService (proto/sweepd/v1). It
// translates between the proto messages and the agent's own types, and maps gRPC errors
// to Status: kUnavailable means "sweepd is away, try again", anything else is an answer.
// Channel creation lives here, in one place, taking the credentials (TLS or a token can
// be added by the caller without touching the agent).
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/agent/device_probe.h"
#include "worker/agent/metric_spool.h"
#include "worker/agent/outcome.h"

namespace sweepd::agent {

// A channel to sweepd that reconnects quickly after an outage (gRPC's own reconnect
// backoff would otherwise grow to two minutes).
std::shared_ptr<grpc::Channel> MakeCoordinatorChannel(
    const std::string& address, const std::shared_ptr<grpc::ChannelCredentials>& credentials);

struct Registration {
  std::string worker_id;
  std::chrono::milliseconds heartbeat_interval{2000};
  std::chrono::milliseconds lease_duration{30000};
};

struct RegisterInfo {
  std::string hostname;
  std::string version;
  std::vector<SlotInfo> slots;
  std::map<std::string, std::string> labels;
  std::string worker_id;  // empty on first registration
};

struct Lease {
  bool granted = false;
  std::string job_id;
  std::string job_kind;
  std::string config_json;
  std::string attempt_id;
  int64_t fencing_token = 0;
  int attempt_number = 1;
  std::chrono::milliseconds retry_after{1000};  // when not granted
};

struct AttemptRef {
  std::string attempt_id;
  int64_t fencing_token = 0;
};

struct HeartbeatReply {
  std::vector<std::string> cancel_attempts;
  std::vector<std::string> lost_attempts;
  bool reregister = false;
};

struct FinishReport {
  AttemptRef attempt;
  Outcome outcome = Outcome::kCrashed;
  int exit_code = -1;
  int signal = 0;
  std::string stderr_tail;
  std::string result_json;
  int64_t last_metric_seq = 0;
};

struct FinishReply {
  bool accepted = false;
  std::string message;
};

struct MetricAckInfo {
  int64_t stored_through_seq = 0;
  bool refused = false;
  std::string message;
};

// One open StreamMetrics call. Threads: Send and CloseWrites from one writer thread,
// ReadAck from one reader thread, Cancel from any; Finish once both are done.
class MetricStream {
 public:
  virtual ~MetricStream() = default;
  virtual bool Send(const AttemptRef& attempt, const std::vector<SpooledPoint>& points) = 0;
  virtual bool ReadAck(MetricAckInfo* ack) = 0;  // false: the stream ended
  virtual void CloseWrites() = 0;
  virtual void Cancel() = 0;
  virtual Status Finish() = 0;
};

// Threads: every method may be called from any thread (gRPC stubs are thread-safe).
class CoordinatorClient {
 public:
  // `token`, when not empty, goes with every call as a bearer token (never logged).
  CoordinatorClient(std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds rpc_timeout,
                    std::string token = "");
  ~CoordinatorClient();

  Result<Registration> Register(const RegisterInfo& info);
  Result<HeartbeatReply> Heartbeat(const std::string& worker_id,
                                   const std::vector<AttemptRef>& running, bool draining);
  // `free_devices`: the devices of the slot's kind this worker can give one job now, the
  // slot's own included (a job across devices needs that many).
  Result<Lease> LeaseJob(const std::string& worker_id, const SlotInfo& slot,
                         int64_t free_memory_bytes, int free_devices = 1);
  Result<bool> AttemptStarted(const AttemptRef& attempt);
  Result<FinishReply> FinishAttempt(const FinishReport& report);
  std::unique_ptr<MetricStream> OpenMetricStream();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sweepd::agent
