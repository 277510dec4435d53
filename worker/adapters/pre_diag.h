// Pre-Diag (the SORA paper's diagonal conditioning): y = (x Wᵀ + b) ⊙ d + s · x Aᵀ Bᵀ with
// lora_Diag [d_out, 1] (ones at init) and LoRA's A, B. SORA adds its rotation on top.
#pragma once

#include "worker/adapters/lora.h"

namespace sweepd::adapters {

class PreDiagAdapter : public LoraAdapter {
 public:
  PreDiagAdapter(std::string method, const AdapterOptions& options, torch::Tensor weight, torch::Tensor bias,
                 LinearShape shape);

 protected:
  torch::Tensor AdaptedForward(const torch::Tensor& x) override { return Conditioned(x); }
  // W' = diag(d) W + s B A and b' = d ⊙ b.
  torch::Tensor ComputeWeight() override;
  torch::Tensor ComputeBias() override;
  // R = (x Wᵀ + b) ⊙ d + s · x Aᵀ Bᵀ.
  torch::Tensor Conditioned(const torch::Tensor& x);

  torch::Tensor diag_;  // [d_out, 1]
};

}  // namespace sweepd::adapters
