// Jittered exponential backoff; see backoff.h.
#include "worker/agent/backoff.h"

#include <algorithm>

namespace sweepd::agent {

Backoff::Backoff(BackoffPolicy policy)
    : policy_(policy),
      ceiling_ms_(static_cast<double>(policy.initial.count())),
      rng_(std::random_device{}()) {}

std::chrono::milliseconds Backoff::Next() {
  // Half fixed, half random: never retry in a tight loop, yet spread the herd.
  const double ceiling = std::max(1.0, ceiling_ms_);
  std::uniform_real_distribution<double> jitter(ceiling / 2, ceiling);
  const auto delay = std::chrono::milliseconds(static_cast<int64_t>(jitter(rng_)));
  ceiling_ms_ =
      std::min(ceiling_ms_ * policy_.multiplier, static_cast<double>(policy_.max.count()));
  return delay;
}

void Backoff::Reset() { ceiling_ms_ = static_cast<double>(policy_.initial.count()); }

}  // namespace sweepd::agent
