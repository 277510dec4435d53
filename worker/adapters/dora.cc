// DoRA (Liu et al. 2024) as HF PEFT 0.21: W' = W + s B A, n = ‖W'_i‖ per output row
// treated as a constant in the backward pass, y = (m/n) ⊙ (x W'ᵀ) + b, m initialised to ‖W_i‖.
// Two ways to get the same numbers (option dora_impl):
//  - column_norm: PEFT's form, builds W' = W + sBA densely every step to take its row norms;
//  - conditioning (default): the SORA paper's reading of DoRA as weight conditioning,
//    W_eff = diag(m/n)(W + sBA). n² = ‖W_i‖² + 2s (B ⊙ (W Aᵀ))_i·1 + s² (B (AAᵀ) ⊙ B)_i·1
//    needs only d_out×r products (‖W_i‖² cached at init) and, n being detached, runs without
//    autograd; no d_out×d_in tensor is built or kept for backward. It is the faster form and
//    the default for training; tests/adapters checks that both agree.
#include <stdexcept>

#include "worker/adapters/lora.h"
#include "worker/adapters/methods.h"

namespace sweepd::adapters {
namespace {

class DoraAdapter : public LoraAdapter {
 public:
  DoraAdapter(const AdapterOptions& options, torch::Tensor weight, torch::Tensor bias, LinearShape shape)
      : LoraAdapter("dora", options, std::move(weight), std::move(bias), std::move(shape)) {
    conditioning_ = options.Choice("dora_impl") == "conditioning";
    torch::NoGradGuard no_grad;
    base_row_sq_ = weight_.to(torch::kFloat64).pow(2).sum(1).to(AccumulateType());
    magnitude_ = AddTrainable("lora_magnitude_vector", base_row_sq_.sqrt().to(weight_.scalar_type()));
  }

 protected:
  torch::Tensor AdaptedForward(const torch::Tensor& x) override {
    torch::Tensor g = RowScale();
    if (conditioning_) {
      torch::Tensor y = AddLowRank(torch::matmul(x, weight_.t()), x) * g;
      return bias_.defined() ? y + bias_ : y;
    }
    // PEFT: base(x) + (m/n − 1) ⊙ x Wᵀ + (m/n) ⊙ lora(x).
    torch::Tensor base = torch::nn::functional::linear(x, weight_, bias_);
    return base + (g - 1) * torch::matmul(x, weight_.t()) + g * LowRank(x);
  }

  torch::Tensor ComputeWeight() override { return RowScale().unsqueeze(1) * (weight_ + LowRankWeight()); }

 private:
  // Row norms of W + sBA, computed without autograd (PEFT detaches them).
  torch::Tensor WeightNorm() {
    torch::NoGradGuard no_grad;
    if (!conditioning_) return (weight_ + LowRankWeight()).norm(2, 1);
    const auto acc = AccumulateType();
    torch::Tensor a = A_.to(acc), b = B_.to(acc);
    torch::Tensor wa = torch::matmul(weight_.to(acc), a.t());                  // [d_out, r]
    torch::Tensor cross = (b * wa).sum(1);                                     // (W · BA)_i
    torch::Tensor quad = (torch::matmul(b, torch::matmul(a, a.t())) * b).sum(1);  // ‖(BA)_i‖²
    torch::Tensor sq = base_row_sq_ + 2.0 * scale_ * cross + scale_ * scale_ * quad;
    return sq.clamp_min(0).sqrt().to(weight_.scalar_type());
  }

  torch::Tensor RowScale() { return magnitude_ / WeightNorm(); }

  // Norms in float32 at least: bfloat16 squares lose the digits the ratio m/n needs.
  torch::ScalarType AccumulateType() const {
    return weight_.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  }

  bool conditioning_ = true;
  torch::Tensor base_row_sq_;  // ‖W_i‖², cached (W is frozen)
  torch::Tensor magnitude_;
};

}  // namespace

std::shared_ptr<Adapter> MakeDora(const std::string&, const AdapterOptions& options, torch::Tensor weight,
                                  torch::Tensor bias, const LinearShape& shape) {
  return std::make_shared<DoraAdapter>(options, std::move(weight), std::move(bias), shape);
}

}  // namespace sweepd::adapters
