// Pre-Diag (SORA paper, Chang et al. 2025): SORA's layer without its rotation (C = D), with the
// authors' tensor names. Merge: W ← diag(d) W + s B A, b ← d ⊙ b.
#include "worker/adapters/pre_diag.h"

#include "worker/adapters/methods.h"

namespace sweepd::adapters {

PreDiagAdapter::PreDiagAdapter(std::string method, const AdapterOptions& options, torch::Tensor weight,
                               torch::Tensor bias, LinearShape shape)
    : LoraAdapter(std::move(method), options, std::move(weight), std::move(bias), std::move(shape)) {
  diag_ = AddTrainable("lora_Diag.weight", torch::ones({Shape().d_out, 1}, Options()));
}

torch::Tensor PreDiagAdapter::Conditioned(const torch::Tensor& x) {
  return AddLowRank(torch::nn::functional::linear(x, weight_, bias_) * diag_.view({-1}), x);
}

torch::Tensor PreDiagAdapter::ComputeWeight() { return weight_ * diag_ + LowRankWeight(); }

torch::Tensor PreDiagAdapter::ComputeBias() { return bias_.defined() ? bias_ * diag_.view({-1}) : bias_; }

std::shared_ptr<Adapter> MakePreDiag(const std::string&, const AdapterOptions& options, torch::Tensor weight,
                                     torch::Tensor bias, const LinearShape& shape) {
  return std::make_shared<PreDiagAdapter>("pre_diag", options, std::move(weight), std::move(bias), shape);
}

}  // namespace sweepd::adapters
