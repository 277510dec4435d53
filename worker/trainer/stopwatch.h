// Wall time since construction, for the elapsed_s, wall_s and tokens_per_s fields of the
// metric lines (docs/metrics.md).
#pragma once

#include <chrono>

namespace sweepd::trainer {

class Stopwatch {
 public:
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace sweepd::trainer
