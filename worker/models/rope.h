// Rotary position embeddings (Su et al. 2021) with the context-extension variants real
// checkpoints use, computed as transformers does (float32 inverse frequencies, rotate_half).
#pragma once

#include <cstdint>

#include <torch/torch.h>

#include "worker/models/llama_config.h"

namespace sweepd::models {

struct RopeTables {
  torch::Tensor cos;  // [T, rotary_dim], float32
  torch::Tensor sin;
};

// Inverse frequencies [rotary_dim / 2] for a sequence of `seq_len` positions (only the
// dynamic variant depends on it), and the factor cos/sin are scaled by (yarn).
torch::Tensor RopeInverseFrequencies(const RopeConfig& rope, int64_t rotary_dim, int64_t seq_len,
                                     double* attention_scaling);

// cos/sin for `positions` [T] (int64) on `positions`'s device. `inv_freq` (optional): the
// inverse frequencies already on that device, with their `attention_scaling` (models keep
// them: a host-to-device copy per forward pass could not be replayed from a CUDA graph); not
// for the dynamic variant, whose frequencies follow the length.
RopeTables MakeRopeTables(const RopeConfig& rope, int64_t head_dim, const torch::Tensor& positions,
                          const torch::Tensor& inv_freq = {}, double attention_scaling = 1.0);
// The rotary dimension for a head of `head_dim` (partial_rotary_factor, rounded down to even).
int64_t RotaryDim(const RopeConfig& rope, int64_t head_dim);

// Applying the tables to q and k: RotaryEmbedding (worker/models/fused_ops.h).

}  // namespace sweepd::models
