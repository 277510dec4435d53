// The decoder's two elementwise blocks that dominate a step after the matrix products, each as
// one autograd function: the rotary embedding of q and k, and SwiGLU's silu(gate) * up. On CUDA
// (float32, bfloat16) each direction is one kernel compiled at first use through NVRTC
// (worker/models/cuda_kernels.cc); elsewhere, and with SWEEPD_FUSED_KERNELS=0, the same
// arithmetic runs as ATen operations. Both ways round as the unfused operations do
// (transformers' `q * cos + rotate_half(q) * sin`, `act(gate) * up`): every product rounded to
// the tensor's dtype, so that the fused forward equals the unfused one bit for bit.
#pragma once

#include <string>

#include <torch/torch.h>

namespace sweepd::models {

// x [B, T, H, D] rotated by cos/sin [B or 1, T, R] (float32, R ≤ D, even): the first R features
// of every head as transformers' apply_rotary_pos_emb does, the rest passed through.
torch::Tensor RotaryEmbedding(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// silu(gate) * up, with a backward that keeps gate and up only (not silu(gate)).
torch::Tensor SwiGlu(const torch::Tensor& gate, const torch::Tensor& up);

// Whether the CUDA kernels may be used: SWEEPD_FUSED_KERNELS unset or "1"; "0" runs the ATen
// operations everywhere (to compare both on one GPU); any other value is an error naming it.
bool FusedKernelsAllowed();

// For a benchmark line: "cuda" once a fused kernel has run on the GPU, "aten" when none did
// (CPU, SWEEPD_FUSED_KERNELS=0, or the reason the kernels could not be built).
std::string FusedKernelStatus();

}  // namespace sweepd::models
