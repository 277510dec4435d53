// AdaLoRA (Zhang et al. 2023) as HF PEFT's adalora.SVDLinear: y = x Wᵀ + b +
// (alpha / (ranknum + 1e-5)) · dropout(x) (A ⊙ E)ᵀ Bᵀ with lora_A [r, d_in], lora_E [r, 1] (zeros),
// lora_B [d_out, r] (A, B ~ N(0, 0.02)), ranknum a buffer (= r). RegularizationLoss gives
// orth_reg_weight × the mean of ‖AAᵀ − I‖²_F and ‖BᵀB − I‖²_F over this layer's two matrices
// (the paper's squared norms; PEFT's AdaLoraModel.forward uses the plain norm: option
// orth_reg_squared=false); the trainer averages it over the layers and adds it to the loss
// before clipping, which is PEFT's orth_reg_weight × the mean over all lora_A and lora_B.
// Rank allocation (AfterOptimizerStep) follows PEFT's RankAllocator — sensitivity |θ·∇θ| smoothed
// by EMAs (beta1, beta2) of importance and uncertainty, triplet score s_E + mean_row s_A +
// mean_col s_B, cubic budget from init_r to target_r between tinit and total − tfinal, masking
// the lowest-scored E every deltaT steps — with one difference: the budget is per layer
// (init_r → target_r in each layer), not pooled over the model, since each adapter owns its layer.
#include <cmath>
#include <stdexcept>

#include "worker/adapters/methods.h"

namespace sweepd::adapters {
namespace {

class AdaloraAdapter : public FrozenLinearAdapter {
 public:
  AdaloraAdapter(const AdapterOptions& o, torch::Tensor weight, torch::Tensor bias, LinearShape shape)
      : FrozenLinearAdapter("adalora", std::move(weight), std::move(bias), std::move(shape)) {
    r_ = o.Int("init_r", o.Int("r"));
    if (r_ <= 0) throw std::invalid_argument("adalora option 'init_r' must be positive");
    target_r_ = o.Int("target_r", std::min<int64_t>(8, r_));
    alpha_ = o.Number("alpha");  // PEFT's lora_alpha resolves to alpha
    dropout_ = o.Number("dropout");
    tinit_ = o.Int("tinit");
    tfinal_ = o.Int("tfinal");
    delta_t_ = o.Int("deltaT");
    beta1_ = o.Number("beta1");
    beta2_ = o.Number("beta2");
    reg_weight_ = o.Number("orth_reg_weight");
    squared_ = o.Bool("orth_reg_squared");
    A_ = AddTrainable("lora_A", torch::randn({r_, Shape().d_in}, Options()) * 0.02);
    E_ = AddTrainable("lora_E", torch::zeros({r_, 1}, Options()));
    B_ = AddTrainable("lora_B", torch::randn({Shape().d_out, r_}, Options()) * 0.02);
    ranknum_ = register_buffer("ranknum", torch::full({1}, static_cast<double>(r_), Options()));
    mask_ = register_buffer("rank_mask", torch::ones({r_, 1}, Options()));
    for (const torch::Tensor& p : {A_, E_, B_}) {
      ipt_.push_back(torch::zeros_like(p));
      unc_.push_back(torch::zeros_like(p));
    }
  }

  std::vector<NamedTensor> Trainable() override { return TrainableList(); }
  std::vector<NamedTensor> State() override {
    return {{"ranknum", ranknum_}, {"rank_mask", mask_}, {"exp_avg_ipt_A", ipt_[0]}, {"exp_avg_ipt_E", ipt_[1]},
            {"exp_avg_ipt_B", ipt_[2]}, {"exp_avg_unc_A", unc_[0]}, {"exp_avg_unc_E", unc_[1]},
            {"exp_avg_unc_B", unc_[2]}};
  }
  int64_t ParameterCount() const override { return r_ * (Shape().d_in + Shape().d_out + 1); }

  // A pruned adapter as PEFT saves it (AdaLoraModel.resize_state_dict_by_rank_pattern): the
  // ranks rank_mask keeps only, rows of lora_A and lora_E, columns of lora_B; every rank while
  // none is pruned. FromPeft puts them back in place, zeros at the pruned ranks (rank_mask must
  // be set first: peft_folder.cc reads it from the folder's rank_pattern).
  torch::Tensor ToPeft(const std::string& name, const torch::Tensor& t) const override {
    if (!Pruned()) return t;
    const torch::Tensor kept = mask_.view({-1}).nonzero().view({-1}).to(t.device());
    return t.index_select(RankDim(name), kept);
  }
  torch::Tensor FromPeft(const std::string& name, const torch::Tensor& t) const override {
    if (!Pruned()) return t;
    const int64_t dim = RankDim(name);
    std::vector<int64_t> shape = t.sizes().vec();
    shape[dim] = r_;
    const torch::Tensor kept = mask_.view({-1}).nonzero().view({-1}).to(t.device());
    return torch::zeros(shape, t.options()).index_copy_(dim, kept, t);
  }

  torch::Tensor RegularizationLoss() override {
    auto term = [&](const torch::Tensor& cov) {
      torch::Tensor n = (cov - Eye(cov.size(0), cov.options())).norm();
      return squared_ ? n * n : n;
    };
    return reg_weight_ * (term(torch::matmul(A_, A_.t())) + term(torch::matmul(B_.t(), B_))) / 2.0;
  }

  void AfterOptimizerStep(int64_t step, int64_t total_steps) override {
    torch::NoGradGuard no_grad;
    const std::vector<torch::Tensor> params = {A_, E_, B_};
    for (size_t i = 0; i < params.size(); ++i) {
      if (!params[i].grad().defined()) continue;
      torch::Tensor ipt = (params[i] * params[i].grad()).abs();
      ipt_[i].mul_(beta1_).add_(ipt, 1 - beta1_);
      unc_[i].mul_(beta2_).add_((ipt - ipt_[i]).abs(), 1 - beta2_);
    }
    int64_t budget = r_;
    bool mask_now = false;
    if (step > tinit_ && step > total_steps - tfinal_) {
      budget = target_r_;
      mask_now = true;
    } else if (step > tinit_) {
      const double span = static_cast<double>(std::max<int64_t>(1, total_steps - tfinal_ - tinit_));
      const double mul = 1.0 - static_cast<double>(step - tinit_) / span;
      budget = static_cast<int64_t>((r_ - target_r_) * mul * mul * mul + target_r_);
      mask_now = delta_t_ > 0 && step % delta_t_ == 0;
    }
    if (mask_now && budget < r_) {
      torch::Tensor score_e = (ipt_[1] * unc_[1]).view({-1});
      torch::Tensor score_a = (ipt_[0] * unc_[0]).mean(1);
      torch::Tensor score_b = (ipt_[2] * unc_[2]).mean(0);
      torch::Tensor triplet = score_e + score_a + score_b;
      torch::Tensor threshold = std::get<0>(triplet.kthvalue(r_ - budget));
      mask_.copy_((triplet > threshold).to(mask_.scalar_type()).view({r_, 1}));
    }
    if (step > tinit_) E_.mul_(mask_);
  }

 protected:
  torch::Tensor AdaptedForward(const torch::Tensor& x) override {
    torch::Tensor in = (dropout_ > 0 && is_training()) ? torch::dropout(x, dropout_, true) : x;
    torch::Tensor lora = torch::matmul(torch::matmul(in, (A_ * E_).t()), B_.t()) * (alpha_ / (ranknum_ + 1e-5));
    return torch::nn::functional::linear(x, weight_, bias_) + lora;
  }
  torch::Tensor ComputeWeight() override {
    return weight_ + torch::matmul(B_, A_ * E_) * (alpha_ / (ranknum_ + 1e-5));
  }

 private:
  bool Pruned() const { return (mask_ == 0).any().item<bool>(); }
  static int64_t RankDim(const std::string& name) { return name == "lora_B" ? 1 : 0; }

  int64_t r_ = 12, target_r_ = 8, tinit_ = 0, tfinal_ = 0, delta_t_ = 1;
  double alpha_ = 8, dropout_ = 0, beta1_ = 0.85, beta2_ = 0.85, reg_weight_ = 0.5;
  bool squared_ = true;
  torch::Tensor A_, E_, B_, ranknum_, mask_;
  std::vector<torch::Tensor> ipt_, unc_;  // EMAs of importance and uncertainty for A, E, B
};

}  // namespace

std::shared_ptr<Adapter> MakeAdalora(const std::string&, const AdapterOptions& options, torch::Tensor weight,
                                     torch::Tensor bias, const LinearShape& shape) {
  return std::make_shared<AdaloraAdapter>(options, std::move(weight), std::move(bias), shape);
}

}  // namespace sweepd::adapters
