// RoPE frequencies after transformers' modeling_rope_utils (default, linear, dynamic NTK,
// llama3, yarn); the formulas are the ones the published checkpoints were trained with.
#include "worker/models/rope.h"

#include <algorithm>
#include <cmath>

namespace sweepd::models {
namespace {

torch::Tensor BaseInverseFrequencies(double theta, int64_t dim) {
  auto exponents = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) / static_cast<double>(dim);
  return 1.0 / torch::pow(theta, exponents);
}

double YarnMscale(double scale, double mscale) {
  if (scale <= 1.0) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

double YarnCorrectionDim(double rotations, int64_t dim, double base, int64_t max_pos) {
  return (static_cast<double>(dim) * std::log(static_cast<double>(max_pos) / (rotations * 2 * M_PI))) /
         (2 * std::log(base));
}

torch::Tensor Yarn(const RopeConfig& rope, int64_t dim, double* attention_scaling) {
  const double factor = rope.factor;
  if (rope.attention_factor > 0) {
    *attention_scaling = rope.attention_factor;
  } else if (rope.mscale > 0 && rope.mscale_all_dim > 0) {
    *attention_scaling = YarnMscale(factor, rope.mscale) / YarnMscale(factor, rope.mscale_all_dim);
  } else {
    *attention_scaling = YarnMscale(factor, 1.0);
  }
  auto pos_freqs = torch::pow(rope.theta, torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) /
                                              static_cast<double>(dim));
  auto extrapolation = 1.0 / pos_freqs;
  auto interpolation = 1.0 / (factor * pos_freqs);
  double low = YarnCorrectionDim(rope.beta_fast, dim, rope.theta, rope.original_max_position_embeddings);
  double high = YarnCorrectionDim(rope.beta_slow, dim, rope.theta, rope.original_max_position_embeddings);
  if (rope.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;
  auto ramp = ((torch::arange(dim / 2, torch::kFloat32) - low) / (high - low)).clamp(0, 1);
  auto extrapolation_factor = 1 - ramp;
  return interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor;
}

torch::Tensor Llama3(const RopeConfig& rope, torch::Tensor inv_freq) {
  const double old_len = static_cast<double>(rope.original_max_position_embeddings);
  const double low_wavelen = old_len / rope.low_freq_factor;
  const double high_wavelen = old_len / rope.high_freq_factor;
  auto wavelen = 2 * M_PI / inv_freq;
  auto scaled = torch::where(wavelen > low_wavelen, inv_freq / rope.factor, inv_freq);
  auto smooth = (old_len / wavelen - rope.low_freq_factor) /
                (rope.high_freq_factor - rope.low_freq_factor);
  auto smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled;
  auto medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
  return torch::where(medium, smoothed, scaled);
}

}  // namespace

torch::Tensor RopeInverseFrequencies(const RopeConfig& rope, int64_t rotary_dim, int64_t seq_len,
                                     double* attention_scaling) {
  *attention_scaling = 1.0;
  if (rope.type == "linear") return BaseInverseFrequencies(rope.theta, rotary_dim) / rope.factor;
  if (rope.type == "dynamic") {
    const int64_t max_pos = rope.original_max_position_embeddings;
    double base = rope.theta;
    if (seq_len > max_pos) {
      base = rope.theta * std::pow(rope.factor * static_cast<double>(seq_len) / max_pos - (rope.factor - 1),
                                   static_cast<double>(rotary_dim) / (rotary_dim - 2));
    }
    return BaseInverseFrequencies(base, rotary_dim);
  }
  if (rope.type == "llama3") return Llama3(rope, BaseInverseFrequencies(rope.theta, rotary_dim));
  if (rope.type == "yarn") return Yarn(rope, rotary_dim, attention_scaling);
  return BaseInverseFrequencies(rope.theta, rotary_dim);
}

int64_t RotaryDim(const RopeConfig& rope, int64_t head_dim) {
  int64_t rotary_dim = static_cast<int64_t>(static_cast<double>(head_dim) * rope.partial_rotary_factor);
  return rotary_dim - rotary_dim % 2;
}

RopeTables MakeRopeTables(const RopeConfig& rope, int64_t head_dim, const torch::Tensor& positions,
                          const torch::Tensor& given_inv_freq, double given_scaling) {
  torch::Tensor inv_freq = given_inv_freq;
  double scaling = given_scaling;
  if (!inv_freq.defined()) {
    // Only dynamic NTK scaling depends on the length; reading it is a host sync, so skip it otherwise.
    const int64_t seq_len =
        rope.type != "dynamic" || positions.numel() == 0 ? 0 : positions.max().item<int64_t>() + 1;
    scaling = 1.0;
    // Non-blocking: a blocking host-to-device copy would wait for the device every forward pass.
    inv_freq = RopeInverseFrequencies(rope, RotaryDim(rope, head_dim), seq_len, &scaling)
                   .to(positions.device(), torch::kFloat32, /*non_blocking=*/true);
  }
  auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq;  // [..., T, rotary/2]
  auto emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos() * scaling, emb.sin() * scaling};
}

}  // namespace sweepd::models
