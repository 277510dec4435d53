// SORSA (Cao 2024, arXiv 2409.00055) as the authors' layer (sorsalib/src/sorsa/layer.py):
// at init the SVD Wᵀ = U Σ Vᵀ gives sorsa_A = U[:, :r]ᵀ [r, d_in], sorsa_S = Σ[:r], sorsa_B =
// V[:, :r] [d_out, r], and the frozen weight becomes the residual W_r = W − s B diag(S) A
// (s = alpha/r, or 1 without alpha), so y = x W_rᵀ + b + s · x (B diag(S) A)ᵀ equals the base layer
// at init. RegularizationLoss is the authors' calc_ortho for this layer, the mean of
// ‖AAᵀ − I‖_F and ‖BᵀB − I‖_F (plain norms); the trainer averages it over the layers (giving
// calc_ortho's mean over all matrices) and, as the authors' SORSATrainer, back-propagates it
// scaled by γ / lr after gradient clipping (option gamma: default 4e-4, the authors'
// scripts/train_sorsa.sh; 0 turns it off, the default of their SORSATrainingArguments).
// With init_weights=false the given weight is taken as the residual already (loading).
#include <stdexcept>

#include "worker/adapters/methods.h"

namespace sweepd::adapters {
namespace {

class SorsaAdapter : public FrozenLinearAdapter {
 public:
  SorsaAdapter(const AdapterOptions& o, torch::Tensor weight, torch::Tensor bias, LinearShape shape)
      : FrozenLinearAdapter("sorsa", std::move(weight), std::move(bias), std::move(shape)) {
    r_ = o.Int("r");
    if (r_ <= 0 || r_ > std::min(Shape().d_in, Shape().d_out)) {
      throw std::invalid_argument("sorsa option 'r' must be in 1..min(d_in, d_out)");
    }
    scale_ = o.Has("alpha") ? o.Number("alpha") / static_cast<double>(r_) : 1.0;
    gamma_ = o.Number("gamma");
    A_ = AddTrainable("sorsa_A", torch::zeros({r_, Shape().d_in}, Options()));
    B_ = AddTrainable("sorsa_B", torch::zeros({Shape().d_out, r_}, Options()));
    S_ = AddTrainable("sorsa_S", torch::zeros({r_}, Options()));
    A0_ = register_buffer("sorsa_A_init", torch::zeros({r_, Shape().d_in}, Options()));
    B0_ = register_buffer("sorsa_B_init", torch::zeros({Shape().d_out, r_}, Options()));
    S0_ = register_buffer("sorsa_S_init", torch::zeros({r_}, Options()));
    if (o.Bool("init_weights")) SplitWeight();
  }

  std::vector<NamedTensor> Trainable() override { return TrainableList(); }
  // The factors at the split, so that ΔW = W_eff − W_0 = s(B S A − B₀ S₀ A₀) survives a reload.
  std::vector<NamedTensor> State() override {
    return {{"sorsa_A_init", A0_}, {"sorsa_B_init", B0_}, {"sorsa_S_init", S0_}};
  }
  torch::Tensor DeltaWeight() override {
    torch::NoGradGuard no_grad;
    return (torch::matmul(B_ * S_, A_) - torch::matmul(B0_ * S0_, A0_)) * scale_;
  }
  int64_t ParameterCount() const override { return r_ * (Shape().d_in + Shape().d_out + 1); }
  bool CudaGraphSafe() const override { return true; }

  torch::Tensor RegularizationLoss() override {
    torch::Tensor ia = Eye(r_, A_.options());
    return ((torch::matmul(A_, A_.t()) - ia).norm() + (torch::matmul(B_.t(), B_) - ia).norm()) / 2.0;
  }

  // SORSATrainer: s_gamma = gamma / learning_rate, backward(s_gamma * ortho_loss) after clipping.
  RegularizerUse Regularizer(double lr) const override { return {lr > 0 ? gamma_ / lr : 0.0, false}; }

  std::map<std::string, double> Diagnostics() override {
    torch::NoGradGuard no_grad;
    return {{"orthonormality_error", RegularizationLoss().item<double>()}};
  }

 protected:
  torch::Tensor AdaptedForward(const torch::Tensor& x) override {
    torch::Tensor adapter = torch::matmul(torch::matmul(x, A_.t()) * S_, B_.t()) * scale_;
    return torch::nn::functional::linear(x, weight_, bias_) + adapter;
  }
  torch::Tensor ComputeWeight() override { return weight_ + torch::matmul(B_ * S_, A_) * scale_; }

 private:
  // The SVD in float32 or better, then W ← W − s B diag(S) A in place (W is the residual from now).
  void SplitWeight() {
    torch::NoGradGuard no_grad;
    const auto work = weight_.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    auto [u, sigma, vh] = torch::linalg_svd(weight_.t().to(work), /*full_matrices=*/false);
    A_.copy_(u.narrow(1, 0, r_).t());
    S_.copy_(sigma.narrow(0, 0, r_));
    B_.copy_(vh.narrow(0, 0, r_).t());
    A0_.copy_(A_);
    B0_.copy_(B_);
    S0_.copy_(S_);
    weight_.copy_(weight_.to(work) - torch::matmul(B_.to(work) * S_.to(work), A_.to(work)) * scale_);
  }

  int64_t r_ = 8;
  double scale_ = 1.0;
  double gamma_ = 0.0;
  torch::Tensor A_, B_, S_;
  torch::Tensor A0_, B0_, S0_;  // the factors right after the split
};

}  // namespace

std::shared_ptr<Adapter> MakeSorsa(const std::string&, const AdapterOptions& options, torch::Tensor weight,
                                   torch::Tensor bias, const LinearShape& shape) {
  return std::make_shared<SorsaAdapter>(options, std::move(weight), std::move(bias), shape);
}

}  // namespace sweepd::adapters
