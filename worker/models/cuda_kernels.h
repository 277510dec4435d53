// CUDA kernels for worker/models/fused_ops.cc, compiled at first use by NVRTC (the CUDA toolkit's
// libnvrtc, linked where CMake finds it) for the device's architecture, loaded with the CUDA
// runtime's library API and launched on the current stream, so that they can be captured in a
// CUDA graph; no nvcc is needed to build them. Each call returns false when it cannot run (a CPU
// build, another dtype, NVRTC failed, sizes that are not a multiple of a 16-byte access or past
// 32-bit indexing); the caller then runs the ATen operations. Arguments are contiguous tensors on
// one CUDA device; outputs are preallocated.
#pragma once

#include <string>

#include <torch/torch.h>

namespace sweepd::models::cuda_kernels {

// out = rotate(x) for x [B, T, H, 2·half] by cos/sin [Bt, T, 2·half] float32 (Bt = 1 or B);
// with `backward`, out = the input gradient for the gradient x.
bool Rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, torch::Tensor& out,
          bool backward);

// out = silu(gate) * up.
bool SwiGluForward(const torch::Tensor& gate, const torch::Tensor& up, torch::Tensor& out);

// d_gate, d_up for the output gradient `grad`.
bool SwiGluBackward(const torch::Tensor& grad, const torch::Tensor& gate, const torch::Tensor& up,
                    torch::Tensor& d_gate, torch::Tensor& d_up);

// "" once the kernels are built and have run; else why they are not used (empty before first use).
std::string Status();

}  // namespace sweepd::models::cuda_kernels
