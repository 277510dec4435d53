// Backoff: the delay before the next attempt to reach sweepd. Exponential with full
// jitter ("Exponential Backoff And Jitter", AWS Architecture Blog 2015), so that the
// workers of a cluster do not all reconnect in the same instant after an outage.
#pragma once

#include <chrono>
#include <random>

namespace sweepd::agent {

struct BackoffPolicy {
  std::chrono::milliseconds initial{200};
  std::chrono::milliseconds max{10000};
  double multiplier = 2.0;
};

// Not thread-safe: each loop that retries owns its own Backoff.
class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy);

  // A random delay in [ceiling/2, ceiling]; the ceiling grows after each call up to max.
  std::chrono::milliseconds Next();
  // After a success: the next failure waits the initial delay again.
  void Reset();

 private:
  BackoffPolicy policy_;
  double ceiling_ms_;
  std::mt19937_64 rng_;
};

}  // namespace sweepd::agent
