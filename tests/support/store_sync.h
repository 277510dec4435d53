// Test support: the store's asynchronous writes made synchronous (each waits for its reply),
// so a test reads as a sequence of calls. sweepd itself never waits: only tests use these.
#pragma once

#include <future>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"

namespace sweepd::testing {

namespace internal {
template <typename T, typename Start>
Result<T> Await(Start&& start) {
  std::promise<Result<T>> done;
  std::future<Result<T>> result = done.get_future();
  start([&done](Result<T> r) { done.set_value(std::move(r)); });
  return result.get();
}
}  // namespace internal

inline Result<std::string> RegisterWorker(store::Store& s, store::WorkerRecord worker,
                                          int64_t now_ms) {
  return internal::Await<std::string>([&](store::Reply<std::string> reply) {
    s.RegisterWorkerAsync(std::move(worker), now_ms, std::move(reply));
  });
}

inline Result<store::HeartbeatResult> Heartbeat(store::Store& s, store::HeartbeatReport report,
                                                int64_t now_ms, int64_t lease_ms) {
  return internal::Await<store::HeartbeatResult>([&](store::Reply<store::HeartbeatResult> reply) {
    s.HeartbeatAsync(std::move(report), now_ms, lease_ms, std::move(reply));
  });
}

inline Result<std::optional<store::Lease>> LeaseJob(store::Store& s, store::LeaseRequest request,
                                                    int64_t now_ms, int64_t lease_ms) {
  Result<store::LeaseOutcome> out =
      internal::Await<store::LeaseOutcome>([&](store::Reply<store::LeaseOutcome> reply) {
        s.LeaseJobAsync(std::move(request), now_ms, lease_ms, std::move(reply));
      });
  if (!out.ok()) return out.status();
  return std::move(out->lease);
}

inline Status MarkStarted(store::Store& s, const std::string& attempt_id, int64_t token,
                          int64_t now_ms) {
  std::promise<Status> done;
  std::future<Status> result = done.get_future();
  s.MarkStartedAsync(attempt_id, token, now_ms,
                     [&done](Status st) { done.set_value(std::move(st)); });
  return result.get();
}

inline Result<store::MetricsStored> StoreMetrics(store::Store& s, const std::string& attempt_id,
                                                 int64_t token,
                                                 std::vector<store::MetricPointIn> points,
                                                 int64_t now_ms) {
  return internal::Await<store::MetricsStored>([&](store::Reply<store::MetricsStored> reply) {
    s.StoreMetricsAsync(attempt_id, token, std::move(points), now_ms, std::move(reply));
  });
}

// `ended` (optional) receives the job and the state the attempt left it in.
inline Status FinishAttempt(store::Store& s, store::FinishReport report,
                            const store::BackoffPolicy& backoff, int64_t now_ms,
                            store::AttemptEnd* ended = nullptr) {
  Result<store::AttemptEnd> out =
      internal::Await<store::AttemptEnd>([&](store::Reply<store::AttemptEnd> reply) {
        s.FinishAttemptAsync(std::move(report), backoff, now_ms, std::move(reply));
      });
  if (!out.ok()) return out.status();
  if (ended != nullptr) *ended = std::move(*out);
  return Status::Ok();
}

}  // namespace sweepd::testing
