// OFT and COFT (Qiu et al. 2023) as HF PEFT 0.21's oft.Linear: a block-diagonal rotation of
// the input features, y = (x R) Wᵀ + b, R_blk from the packed skew oft_R [blocks, n(n−1)/2]
// by the Cayley transform (I + Q)(I − Q)⁻¹ (docs/methods.md; default, exactly orthogonal) or PEFT
// 0.21's default, the truncated Cayley–Neumann series (I + Q)(I + Q + Q² + Q³) (option
// use_cayley_neumann; the oft_* reference files were made with it). PEFT's own exact branch is
// (I − Q)(I + Q)⁻¹, the transpose, which disagrees with its series; we keep the series' sign. COFT first
// projects each Q into the Frobenius ball of radius eps/√blocks, in place and outside autograd,
// as PEFT does. Merge: W ← W Rᵀ (block-wise); training uses the same rotated weight.
#include <cmath>
#include <stdexcept>

#include "worker/adapters/methods.h"
#include "worker/adapters/rotations.h"

namespace sweepd::adapters {
namespace {

class OftAdapter : public FrozenLinearAdapter {
 public:
  OftAdapter(const AdapterOptions& o, torch::Tensor weight, torch::Tensor bias, LinearShape shape)
      : FrozenLinearAdapter("oft", std::move(weight), std::move(bias), std::move(shape)), settings_(o.json()) {
    settings_["method"] = "oft";
    Result<int64_t> count = CountTrainableParameters(settings_, Shape());
    if (!count.ok()) throw std::invalid_argument(count.status().message());
    count_ = *count;
    n_ = o.Int("oft_block_size");
    if (n_ <= 0) n_ = o.Int("r") > 0 ? Shape().d_in / o.Int("r") : 32;
    blocks_ = Shape().d_in / n_;
    coft_ = o.Bool("coft");
    eps_ = o.Number("eps");
    neumann_ = o.Bool("use_cayley_neumann");
    terms_ = o.Int("num_cayley_neumann_terms");
    packed_ = AddTrainable("oft_R.weight", torch::zeros({blocks_, n_ * (n_ - 1) / 2}, Options()));
  }

  std::vector<NamedTensor> Trainable() override { return TrainableList(); }
  int64_t ParameterCount() const override { return count_; }
  bool CudaGraphSafe() const override { return true; }  // Cayley by linalg_solve_ex: no host check

  // PEFT's exact branch is (I − Q)(I + Q)⁻¹ of oft_R's skew Q, ours (I + Q)(I − Q)⁻¹: the
  // same rotation from −Q. The series (use_cayley_neumann) agrees with ours as it is.
  torch::Tensor ToPeft(const std::string&, const torch::Tensor& t) const override { return neumann_ ? t : -t; }
  torch::Tensor FromPeft(const std::string&, const torch::Tensor& t) const override { return neumann_ ? t : -t; }

  std::map<std::string, double> Diagnostics() override {
    return {{"orthogonality_error", OrthogonalityError(Rotation())}};
  }

 protected:
  // (x R) Wᵀ = x (W Rᵀ)ᵀ: the blocks rotate the weight's d_out rows rather than the N ≫ d_out
  // rows of x, one batched GEMM over the blocks per step.
  torch::Tensor AdaptedForward(const torch::Tensor& x) override {
    return torch::nn::functional::linear(x, ComputeWeight(), bias_);
  }
  torch::Tensor ComputeWeight() override { return ApplyBlockDiagonal(weight_, Rotation().transpose(1, 2)); }

 private:
  torch::Tensor Rotation() {
    if (coft_) Project();
    const auto dtype = packed_.scalar_type();
    torch::Tensor q = SkewFromPacked(packed_.to(RotationType(dtype)), n_);
    return (neumann_ ? CayleyNeumann(q, terms_) : Cayley(-q)).to(dtype);
  }

  // PEFT's _project_batch: Q ← eps' Q/‖Q‖ where ‖Q‖ > eps' = eps/√blocks.
  void Project() {
    torch::NoGradGuard no_grad;
    torch::Tensor q = SkewFromPacked(packed_, n_);
    const double eps = eps_ / std::sqrt(static_cast<double>(blocks_));
    torch::Tensor norm = q.reshape({blocks_, -1}).norm(2, 1).view({blocks_, 1, 1});
    torch::Tensor projected = torch::where(norm <= eps, q, eps * (q / norm));
    packed_.copy_(PackedFromSkew(projected));
  }

  nlohmann::json settings_;
  int64_t count_ = 0, n_ = 0, blocks_ = 0, terms_ = 5;
  bool coft_ = false, neumann_ = false;
  double eps_ = 6e-5;
  torch::Tensor packed_;
};

}  // namespace

std::shared_ptr<Adapter> MakeOft(const std::string&, const AdapterOptions& options, torch::Tensor weight,
                                 torch::Tensor bias, const LinearShape& shape) {
  return std::make_shared<OftAdapter>(options, std::move(weight), std::move(bias), shape);
}

}  // namespace sweepd::adapters
