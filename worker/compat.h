// Every difference between LibTorch 1.13 (Debian 12, CPU) and LibTorch 2.x (GPU nodes) that
// sweep-train touches lives here, so that the rest of the trainer compiles against both.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include <torch/torch.h>
#include <torch/version.h>
#include <ATen/autocast_mode.h>

#if defined(SWEEPD_HAVE_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

// CUDA graphs of training passes (worker/trainer/cuda_graph.cc): a CUDA build of LibTorch 2.x,
// whose at::cuda::CUDAGraph registers the default generator itself (1.13's API differs).
#if defined(SWEEPD_HAVE_CUDA) && TORCH_VERSION_MAJOR >= 2
#define SWEEPD_CUDA_GRAPHS 1
#endif

namespace sweepd::compat {

inline constexpr bool kHasFusedAttention = TORCH_VERSION_MAJOR >= 2;

// softmax(q kᵀ / sqrt(d) + mask) v for q [B, H, T, D], k/v [B, H_kv, S, D] with H a multiple
// of H_kv (grouped-query attention: query head i reads KV head i / (H / H_kv)). `mask` is a
// boolean [B or 1, 1, T, S] tensor (true = may attend); undefined means plain causal attention.
// LibTorch 2.x dispatches to the fused kernels: flash attention for the causal case (with
// enable_gqa from 2.5 on, so K and V are never expanded), memory-efficient attention for an
// explicit mask (which needs expanded K and V); 1.13 has none and runs the plain maths.
inline torch::Tensor ScaledDotProductAttention(const torch::Tensor& q, torch::Tensor k, torch::Tensor v,
                                               const torch::Tensor& mask) {
  const int64_t heads = q.size(1), kv_heads = k.size(1);
  auto expand_kv = [&] {
    if (kv_heads == heads) return;
    const int64_t b = k.size(0), s = k.size(2), d = k.size(3), groups = heads / kv_heads;
    k = k.unsqueeze(2).expand({b, kv_heads, groups, s, d}).reshape({b, heads, s, d});
    v = v.unsqueeze(2).expand({b, kv_heads, groups, s, d}).reshape({b, heads, s, d});
  };
#if TORCH_VERSION_MAJOR >= 2
  if (!mask.defined()) {
#if TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 5
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/true,
                                            /*scale=*/std::nullopt, /*enable_gqa=*/kv_heads != heads);
#else
    expand_kv();
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/true);
#endif
  }
  expand_kv();
  return at::scaled_dot_product_attention(q, k, v, mask);
#else
  expand_kv();
  torch::Tensor allowed = mask;
  if (!allowed.defined()) {
    auto opts = torch::TensorOptions().dtype(torch::kInt64).device(q.device());
    auto row = torch::arange(q.size(2), opts), col = torch::arange(k.size(2), opts);
    allowed = (row.unsqueeze(1) >= col.unsqueeze(0)).unsqueeze(0).unsqueeze(0);
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale;
  scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
  auto probs = torch::softmax(scores, -1, torch::kFloat32).to(q.scalar_type());
  return torch::matmul(probs, v);
#endif
}

// Llama's RMSNorm: weight ⊙ x / sqrt(mean(x²) + eps), normalised in float32 (transformers'
// LlamaRMSNorm). On CUDA with LibTorch 2.9+ at::rms_norm runs one fused kernel each way instead
// of about eight float32 passes (it applies the weight before the one rounding to x's dtype,
// so results move by at most a unit in the last place of bf16); elsewhere the plain maths.
inline torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9)
  if (x.is_cuda()) return at::rms_norm(x, {x.size(-1)}, weight, eps);
#endif
  auto h = x.to(torch::kFloat32);
  h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * h.to(x.scalar_type());
}

// One fused AdamW update (PyTorch's arithmetic) of every tensor in `params`, all on one CUDA
// device with one dtype; `step` is a float32 device scalar holding the step count (1-based).
// Returns false where this LibTorch has no fused kernel (before 2.2), for the caller's loop.
inline bool FusedAdamW(const std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& grads,
                       const std::vector<torch::Tensor>& exp_avgs, const std::vector<torch::Tensor>& exp_avg_sqs,
                       const std::vector<torch::Tensor>& steps, double lr, double beta1, double beta2,
                       double weight_decay, double eps) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
  at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, lr, beta1, beta2,
                    weight_decay, eps, /*amsgrad=*/false, /*maximize=*/false);
  return true;
#else
  (void)params;
  (void)grads;
  (void)exp_avgs;
  (void)exp_avg_sqs;
  (void)steps;
  (void)lr;
  (void)beta1;
  (void)beta2;
  (void)weight_decay;
  (void)eps;
  return false;
#endif
}

// tensors[i] *= scale (a device scalar) for every i, in one launch where LibTorch has the
// foreach kernel (2.1 on), without reading `scale` on the host.
inline void MultiplyInPlace(const std::vector<torch::Tensor>& tensors, const torch::Tensor& scale) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
  at::_foreach_mul_(tensors, scale);
#else
  for (const auto& t : tensors) t.mul_(scale.to(t.scalar_type()));
#endif
}

// t.zero_() for every t, in one launch where LibTorch has the foreach kernel (2.x).
inline void ZeroInPlace(const std::vector<torch::Tensor>& tensors) {
  if (tensors.empty()) return;
#if TORCH_VERSION_MAJOR >= 2
  at::_foreach_zero_(tensors);
#else
  for (const auto& t : tensors) t.zero_();
#endif
}

// Peak bytes the CUDA caching allocator has handed out on `device` since the last reset;
// 0 where the build has no CUDA.
inline int64_t CudaPeakAllocatedBytes(int device) {
#if defined(SWEEPD_HAVE_CUDA)
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
  // Index 0 is StatType::AGGREGATE; the enum moved from c10::cuda::CUDACachingAllocator to
  // c10::CachingDeviceAllocator in 2.x, its values did not.
  return stats.allocated_bytes[0].peak;
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
// (set_autocast_gpu_dtype / set_enabled -> set_autocast_dtype / set_autocast_enabled(device)).
class CudaAutocast {
 public:
  explicit CudaAutocast(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    previous_ = at::autocast::is_autocast_enabled(at::kCUDA);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    previous_ = at::autocast::is_enabled();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
#endif
  }
  ~CudaAutocast() {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, previous_);
#else
    at::autocast::set_enabled(previous_);
#endif
    at::autocast::clear_cache();
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool enabled_;
  bool previous_ = false;
};

}  // namespace sweepd::compat
