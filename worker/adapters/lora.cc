// LoRA and rsLoRA (Hu et al. 2021; Kalajdzievski 2023), as HF PEFT 0.21's lora.Linear:
// y = x Wᵀ + b + s · dropout(x) Aᵀ Bᵀ, s = alpha/r or alpha/√r, A Kaiming-uniform, B zero.
#include "worker/adapters/lora.h"

#include <cmath>
#include <stdexcept>

#include "worker/adapters/methods.h"

namespace sweepd::adapters {

LoraAdapter::LoraAdapter(std::string method, const AdapterOptions& options, torch::Tensor weight,
                         torch::Tensor bias, LinearShape shape)
    : FrozenLinearAdapter(std::move(method), std::move(weight), std::move(bias), std::move(shape)),
      settings_(options.json()) {
  r_ = options.Int("r");
  const double alpha = options.Number("alpha");
  // rsLoRA is a method of its own and a flag of lora (methods without the flag read false).
  const bool rslora = Method() == "rslora" || options.Bool("rslora", false);
  scale_ = rslora ? alpha / std::sqrt(static_cast<double>(r_)) : alpha / static_cast<double>(r_);
  dropout_ = options.Number("dropout");
  A_ = AddTrainable("lora_A.weight", torch::empty({r_, Shape().d_in}, Options()));
  B_ = AddTrainable("lora_B.weight", torch::zeros({Shape().d_out, r_}, Options()));
  KaimingUniform(A_);
}

int64_t LoraAdapter::ParameterCount() const {
  Result<int64_t> c = CountTrainableParameters(settings_, Shape());
  if (!c.ok()) throw std::invalid_argument(c.status().message());
  return *c;
}

torch::Tensor LoraAdapter::LowRank(const torch::Tensor& x) {
  torch::Tensor in = x;
  if (dropout_ > 0.0 && is_training()) in = torch::dropout(x, dropout_, /*train=*/true);
  return torch::matmul(torch::matmul(in, A_.t()), B_.t()) * scale_;
}

torch::Tensor LoraAdapter::AddLowRank(const torch::Tensor& base, const torch::Tensor& x) {
  torch::Tensor in = x;
  if (dropout_ > 0.0 && is_training()) in = torch::dropout(x, dropout_, /*train=*/true);
  torch::Tensor xa = torch::matmul(in.reshape({-1, Shape().d_in}), A_.t());  // [N, r]
  return torch::addmm(base.reshape({-1, Shape().d_out}), xa, B_.t(), /*beta=*/1, /*alpha=*/scale_)
      .view(base.sizes());
}

torch::Tensor LoraAdapter::LowRankWeight() const { return torch::matmul(B_, A_) * scale_; }

torch::Tensor LoraAdapter::AdaptedForward(const torch::Tensor& x) {
  return AddLowRank(torch::nn::functional::linear(x, weight_, bias_), x);
}

torch::Tensor LoraAdapter::ComputeWeight() { return weight_ + LowRankWeight(); }

namespace {

// LoRA itself (and rsLoRA, LoRA+): ΔW = s · B A exactly. DoRA, Pre-Diag and SORA derive from
// LoraAdapter but rescale or rotate the branch, so only this class reports the factors.
class PlainLoraAdapter final : public LoraAdapter {
 public:
  using LoraAdapter::LoraAdapter;
  std::optional<std::pair<torch::Tensor, torch::Tensor>> LowRankFactors() override { return {{B_, A_}}; }
};

}  // namespace

std::shared_ptr<Adapter> MakeLora(const std::string& method, const AdapterOptions& options,
                                  torch::Tensor weight, torch::Tensor bias, const LinearShape& shape) {
  return std::make_shared<PlainLoraAdapter>(method, options, std::move(weight), std::move(bias), shape);
}

}  // namespace sweepd::adapters
