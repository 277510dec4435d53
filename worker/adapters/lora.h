// LoRA's low-rank branch s · x Aᵀ Bᵀ (Hu et al. 2021; HF PEFT's names lora_A/lora_B),
// shared by LoRA/rsLoRA and by the methods built on it: DoRA, Pre-Diag and SORA.
#pragma once

#include "worker/adapters/adapter.h"

namespace sweepd::adapters {

class LoraAdapter : public FrozenLinearAdapter {
 public:
  // Options (defaults in common/methods/lora_like.h): r, alpha (s = alpha/r; alpha/√r with
  // rslora), dropout (on the branch's input, training mode only).
  LoraAdapter(std::string method, const AdapterOptions& options, torch::Tensor weight, torch::Tensor bias,
              LinearShape shape);

  std::vector<NamedTensor> Trainable() override { return TrainableList(); }
  int64_t ParameterCount() const override;
  // LoRA and the methods built on it (DoRA, Pre-Diag, SORA): plain tensor maths per step.
  bool CudaGraphSafe() const override { return true; }

 protected:
  torch::Tensor AdaptedForward(const torch::Tensor& x) override;
  torch::Tensor ComputeWeight() override;
  // s · x Aᵀ Bᵀ (with dropout on x while training).
  torch::Tensor LowRank(const torch::Tensor& x);
  // base + s · x Aᵀ Bᵀ for base [..., d_out], as one GEMM that accumulates into base (no
  // separate scale and add passes over the [N, d_out] output).
  torch::Tensor AddLowRank(const torch::Tensor& base, const torch::Tensor& x);
  // s · B A.
  torch::Tensor LowRankWeight() const;

  nlohmann::json settings_;
  int64_t r_;
  double scale_;
  double dropout_;
  torch::Tensor A_, B_;
};

}  // namespace sweepd::adapters
