// MetricStreamer: delivers one attempt's spooled metric lines to sweepd over
// StreamMetrics, in seq order, in batches within sweepd's limits of a call (lines and
// bytes, common/metric_line.h), with at most `window` points unacknowledged
// (back-pressure: the spool absorbs what sweepd cannot take yet). After a broken stream
// it reconnects with jittered backoff and resends from the last acknowledged seq, so a
// point is stored exactly once provided sweepd ignores seqs it already stored.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "worker/agent/backoff.h"
#include "worker/agent/coordinator_client.h"
#include "worker/agent/metric_spool.h"

namespace sweepd::agent {

struct StreamSettings {
  size_t batch_size = 128;
  int64_t window = 1024;
  // No acknowledgement for this long while points are outstanding: the stream is dead.
  std::chrono::milliseconds ack_timeout{30000};
  BackoffPolicy backoff;
};

// Threads: the constructor starts a streaming thread; WaitDelivered, Stop, acked_seq
// and refused may be called from any thread. on_refused runs on the streaming thread.
class MetricStreamer {
 public:
  // `client` and `spool` must outlive this object.
  MetricStreamer(CoordinatorClient& client, MetricSpool& spool, AttemptRef attempt,
                 StreamSettings settings, std::function<void()> on_refused);
  ~MetricStreamer();  // stops and joins

  // Blocks until every spooled point of a closed spool is acknowledged (true), sweepd
  // refused the attempt or Stop was called (false).
  bool WaitDelivered();
  // Gives up: the streaming thread ends without delivering the rest.
  void Stop();
  int64_t acked_seq() const;
  bool refused() const;

 private:
  void Run();
  // One stream's life; returns when it broke or nothing is left to do.
  void StreamOnce(Backoff& backoff);
  bool Done() const;  // requires mu_

  CoordinatorClient& client_;
  MetricSpool& spool_;
  const AttemptRef attempt_;
  const StreamSettings settings_;
  std::function<void()> on_refused_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t acked_ = 0;      // guarded by mu_
  bool refused_ = false;   // guarded by mu_
  bool stopped_ = false;   // guarded by mu_
  bool finished_ = false;  // guarded by mu_: the thread has ended
  std::thread thread_;
};

}  // namespace sweepd::agent
