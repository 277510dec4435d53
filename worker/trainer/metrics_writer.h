// The trainer's JSON-lines channel on stdout (schema: docs/metrics.md). One object per
// line, flushed at once so the worker streams it live.
#pragma once

#include <cstdint>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace sweepd::trainer {

class MetricsWriter {
 public:
  explicit MetricsWriter(std::ostream& out = std::cout) : out_(out) {}
  void Emit(const nlohmann::json& line) { out_ << line.dump() << std::endl; }

 private:
  std::ostream& out_;
};

// Peak memory so far: the CUDA caching allocator's peak on a CUDA device, else the
// process's peak resident set size.
int64_t PeakMemoryBytes(const torch::Device& device);

}  // namespace sweepd::trainer
