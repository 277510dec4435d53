// Closed-form trainable-parameter counts of every adapter method, torch-free, so that
// sweepd and sweepctl check parameter budgets without LibTorch. The trainer's adapters
// return the same numbers (tests compare them with the counted tensor sizes).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace sweepd {

// The shape of one frozen linear layer y = x Wᵀ + b, W [d_out, d_in].
struct LinearShape {
  std::string name;            // module path, e.g. model.layers.0.self_attn.q_proj
  int64_t d_out = 0;
  int64_t d_in = 0;
  bool has_bias = false;
  bool feed_forward = false;   // an MLP projection (IA3 scales its inputs for down_proj)
};

// Trainable parameters of the adapter `settings` ({"method": ..., options}) on `shape`,
// read through methods::Resolve; an error names the unknown method, the unknown or bad
// option, or why the layer does not fit.
Result<int64_t> CountTrainableParameters(const nlohmann::json& settings, const LinearShape& shape);

}  // namespace sweepd
