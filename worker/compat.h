// Every difference between LibTorch 1.13 (Debian 12, CPU) and LibTorch 2.x (GPU nodes) that
// sweep-train touches lives here, so that the rest of the trainer compiles against both.
#pragma once

#include <cstdint>

#include <torch/torch.h>
#include <torch/version.h>
#include <ATen/autocast_mode.h>

#if defined(SWEEPD_HAVE_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace sweepd::compat {

inline constexpr bool kHasFusedAttention = TORCH_VERSION_MAJOR >= 2;

// softmax(q kᵀ / sqrt(d) + mask) v for q [B, H, T, D], k/v [B, H, S, D]. `mask` is a boolean
// [B or 1, 1, T, S] tensor (true = may attend). LibTorch 2.x dispatches to the fused kernels
// (flash / memory-efficient on CUDA); 1.13 has none, so it runs the plain maths.
inline torch::Tensor ScaledDotProductAttention(const torch::Tensor& q, const torch::Tensor& k,
                                               const torch::Tensor& v, const torch::Tensor& mask) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, mask);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale;
  scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  auto probs = torch::softmax(scores, -1, torch::kFloat32).to(q.scalar_type());
  return torch::matmul(probs, v);
#endif
}

// Peak bytes the CUDA caching allocator has handed out on `device` since the last reset;
// 0 where the build has no CUDA.
inline int64_t CudaPeakAllocatedBytes(int device) {
#if defined(SWEEPD_HAVE_CUDA)
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
  return stats.allocated_bytes[static_cast<size_t>(c10::cuda::CUDACachingAllocator::StatType::AGGREGATE)]
      .peak;
#else
  (void)device;
  return 0;
#endif
}

inline void ResetCudaPeak(int device) {
#if defined(SWEEPD_HAVE_CUDA)
  c10::cuda::CUDACachingAllocator::resetPeakStats(device);
#else
  (void)device;
#endif
}

// bf16 autocast for CUDA forward passes. The autocast API moved between 1.13 and 2.x
// (set_autocast_gpu_dtype -> set_autocast_dtype(device)); both keep these two calls.
class CudaAutocast {
 public:
  explicit CudaAutocast(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
    previous_ = at::autocast::is_enabled();
#if TORCH_VERSION_MAJOR >= 2 && TORCH_VERSION_MINOR >= 4
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
#else
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
#endif
    at::autocast::set_enabled(true);
  }
  ~CudaAutocast() {
    if (!enabled_) return;
    at::autocast::set_enabled(previous_);
    at::autocast::clear_cache();
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool enabled_;
  bool previous_ = false;
};

}  // namespace sweepd::compat
