// RecordingCoordinator: a real gRPC WorkerService on loopback for the agent's tests. It
// hands out queued jobs, records everything a worker sends (registrations, heartbeats,
// metric points, finishes), stores metric points the way sweepd must (in order, each seq
// once), retries failed attempts, and can be stopped and restarted on the same port to
// play an outage. Not a model of sweepd's scheduler: just enough to watch the agent.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sweepd/v1/sweepd.grpc.pb.h"

namespace sweepd::agent::testing {

struct AttemptRecord {
  std::string attempt_id;
  std::string job_id;
  int64_t fencing_token = 0;
  int number = 1;
  bool started = false;
  std::vector<std::string> stored;  // metric lines, stored[i] has seq i+1
  int64_t duplicates = 0;           // points received again after being stored
  bool gap = false;                 // a point arrived before its predecessor
  int max_batch = 0;                // the largest batch received
  int64_t acked = 0;                // the highest stored_through_seq sent back
  int64_t max_unacked = 0;          // the most points ever received but not yet acknowledged
  std::optional<sweepd::v1::FinishAttemptRequest> finish;
  std::chrono::steady_clock::time_point leased_at;
  std::chrono::steady_clock::time_point finished_at;
  bool cancel = false;  // tell the worker to cancel at its next heartbeat
  bool lost = false;    // tell the worker the lease is gone
};

struct CoordinatorState {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<sweepd::v1::RegisterRequest> registrations;
  std::vector<sweepd::v1::HeartbeatRequest> heartbeats;
  std::deque<std::string> queue;               // job ids
  std::map<std::string, std::string> configs;  // job id -> config_json
  std::map<std::string, int> max_attempts;     // job id -> attempts before giving up
  std::map<std::string, int> attempts_of;      // job id -> attempts made
  std::map<std::string, AttemptRecord> attempts;
  std::vector<std::string> attempt_order;
  int64_t next_token = 100;
  bool hold_acks = false;
  std::vector<int> lease_free_devices;  // free_devices of every LeaseJob call
  int streams_opened = 0;  // StreamMetrics calls received  // store points but acknowledge nothing
                           // until it is cleared
};

class RecordingCoordinator {
 public:
  RecordingCoordinator();
  ~RecordingCoordinator();

  // Serves on 127.0.0.1; the first Start picks a free port, later ones reuse it.
  void Start();
  // Stops serving at once, cancelling open calls; the recorded state stays.
  void Stop();
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  void AddJob(const std::string& job_id, const std::string& config_json, int max_attempts = 1);
  // Waits (up to a generous limit, as a hang guard) until pred holds on the state.
  bool WaitFor(const std::function<bool(CoordinatorState&)>& pred,
               std::chrono::seconds limit = std::chrono::seconds(60));
  // Runs f with the state locked.
  void With(const std::function<void(CoordinatorState&)>& f);

  // Convenience: the attempts of a job, in lease order (copies).
  std::vector<AttemptRecord> AttemptsOf(const std::string& job_id);
  bool JobFinished(const std::string& job_id);  // its last attempt reported and no retry is queued

 private:
  class Service;
  CoordinatorState state_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace sweepd::agent::testing
