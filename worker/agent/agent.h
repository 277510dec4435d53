// Agent: the node agent behind `sweep-worker`. It registers the node's slots with
// sweepd, keeps its leases alive with heartbeats, runs one lease loop per slot (lease a
// job, run the attempt, deliver its metrics, report the outcome), rides out sweepd
// outages without stopping the jobs it runs, and drains on request: no new leases,
// running jobs get drain_timeout to finish, the rest are stopped and handed back.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "worker/agent/attempt_runner.h"
#include "worker/agent/backoff.h"
#include "worker/agent/coordinator_client.h"
#include "worker/agent/device_probe.h"
#include "worker/agent/slot_claims.h"
#include "worker/agent/metric_streamer.h"

namespace sweepd::agent {

struct AgentOptions {
  std::string hostname;
  std::string version;
  std::map<std::string, std::string> labels;
  AttemptSettings attempt;
  // After Drain: how long running jobs may go on before they are handed back.
  std::chrono::milliseconds drain_timeout{std::chrono::minutes(5)};
  // After the jobs stopped: how long to keep trying to tell an unreachable sweepd.
  std::chrono::milliseconds report_timeout{std::chrono::minutes(1)};
  BackoffPolicy backoff;
  StreamSettings stream;
};

// Threads: Run on the caller's (main) thread until the agent has drained. Inside, one
// supervisor thread (registration, heartbeats, cancel and lost-lease orders) and one
// thread per slot (its lease loop, running one attempt at a time). Drain and
// HandBackNow may be called from any thread, e.g. the signal-handling thread.
class Agent {
 public:
  // `client` must outlive the agent.
  Agent(AgentOptions options, std::vector<SlotInfo> slots, CoordinatorClient& client);
  ~Agent();

  // Returns once drained: 0 when every attempt was reported to sweepd, 1 otherwise.
  int Run();
  // Stop taking leases; let running jobs finish within drain_timeout.
  void Drain();
  // Like Drain, but hand running jobs back now (a second SIGTERM).
  void HandBackNow();

  // The id sweepd gave this worker; empty before the first registration.
  std::string worker_id() const;

 private:
  struct RunningAttempt {
    AttemptRef ref;
    AttemptRunner* runner;     // owned by the slot thread running it
    MetricStreamer* streamer;  // likewise
    bool lost = false;         // sweepd said the lease is gone: nothing left to report
  };

  void SupervisorLoop();
  bool RegisterOnce(Backoff& backoff);
  void ApplyHeartbeat(const HeartbeatReply& reply);
  void SlotLoop(const SlotInfo& slot);
  // Runs the lease on `group` (the slot itself, then the other slots a job across devices holds).
  void RunLease(const SlotInfo& slot, const std::vector<SlotInfo>& group, const Lease& lease);
  // Retries FinishAttempt until sweepd answers or the agent gives up reporting.
  bool ReportFinish(const FinishReport& report);
  // Waits for a registration; false when draining made waiting pointless.
  bool WaitRegistered(std::string* worker_id);
  // Sleeps `d` unless draining starts (returns false then).
  bool SleepUnlessDraining(std::chrono::milliseconds d);
  bool IsDraining() const;
  std::vector<AttemptRef> RunningRefs();

  const AgentOptions options_;
  const std::vector<SlotInfo> slots_;
  CoordinatorClient& client_;
  const std::string inherited_cuda_;
  const std::string inherited_npu_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool registered_ = false;                             // guarded by mu_
  std::string worker_id_;                               // guarded by mu_
  std::chrono::milliseconds heartbeat_interval_{2000};  // guarded by mu_
  bool draining_ = false;                               // guarded by mu_
  bool hand_back_now_ = false;                          // guarded by mu_
  bool give_up_reporting_ = false;                      // guarded by mu_
  bool stopping_ = false;                               // guarded by mu_: the supervisor ends
  int active_slots_ = 0;  // guarded by mu_: slot threads still in their loop
  int unreported_ = 0;    // guarded by mu_: attempts we could not report
  std::map<std::string, RunningAttempt> running_;  // guarded by mu_, by attempt id
  SlotClaims claims_;                              // guarded by mu_: which slots a lease holds
  int register_failures_ = 0;                      // supervisor thread only
};

}  // namespace sweepd::agent
