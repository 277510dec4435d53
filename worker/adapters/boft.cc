// BOFT (Liu et al. 2024) as HF PEFT 0.21's boft.Linear: the input features are rotated by
// a product of `factors` butterfly matrices M_f = P_f B_f P_fᵀ (B_f block-diagonal Cayley
// rotations (I − S)(I + S)⁻¹ of S = (R − Rᵀ)/2 from boft_R [factors, blocks, b, b], P_f PEFT's
// block-butterfly permutations), and the output rows are scaled by boft_s [d_out, 1]:
// y = ((x M_{F−1} ⋯ M_0) Wᵀ) ⊙ sᵀ + b, computed as x ((W Mᵀ) ⊙ s)ᵀ + b (the rotation acts on
// the weight's rows). Permutations are index gathers, never dense matrices.
// Note: PEFT silently uses one butterfly factor when its CUDA extension is missing; we honour
// boft_n_butterfly_factor as configured (the conformance command reads it from the file).
#include <stdexcept>

#include "worker/adapters/methods.h"
#include "worker/adapters/rotations.h"

namespace sweepd::adapters {
namespace {

// PEFT's block_butterfly_perm(n, b, r, n_butterfly_factor) as a gather index.
std::vector<int64_t> ButterflyPermutation(int64_t n, int64_t b, int64_t r, int64_t extra_factors) {
  std::vector<int64_t> indices(n);
  for (int64_t i = 0; i < n; ++i) indices[i] = i;
  if (extra_factors == 0) return indices;
  if (b * r * 2 > n) throw std::invalid_argument("boft: invalid number of blocks for the butterfly");
  const int64_t block_size = n / b;
  const int64_t step = block_size / r;
  std::vector<int64_t> sorted_order(block_size);
  std::vector<int64_t> seq;
  for (int64_t p = 0; p < step; p += 2) seq.push_back(p);
  for (int64_t p = 1; p < step; p += 2) seq.push_back(p);
  for (size_t i = 0; i < seq.size(); ++i) {
    for (int64_t k = 0; k < r; ++k) sorted_order[i * r + k] = seq[i] * r + k;
  }
  std::vector<int64_t> out(n);
  for (int64_t start = 0; start < n; start += block_size) {
    for (int64_t k = 0; k < block_size; ++k) out[start + k] = indices[start + sorted_order[k]];
  }
  return out;
}

class BoftAdapter : public FrozenLinearAdapter {
 public:
  BoftAdapter(const AdapterOptions& o, torch::Tensor weight, torch::Tensor bias, LinearShape shape)
      : FrozenLinearAdapter("boft", std::move(weight), std::move(bias), std::move(shape)), settings_(o.json()) {
    settings_["method"] = "boft";
    Result<int64_t> count = CountTrainableParameters(settings_, Shape());
    if (!count.ok()) throw std::invalid_argument(count.status().message());
    count_ = *count;
    const int64_t d_in = Shape().d_in;
    b_ = o.Int("boft_block_size");
    if (b_ <= 0) b_ = o.Int("boft_block_num") > 0 ? d_in / o.Int("boft_block_num") : 4;
    blocks_ = d_in / b_;
    factors_ = o.Int("boft_n_butterfly_factor");
    auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(Options().device());
    for (int64_t f = 0; f < factors_; ++f) {
      std::vector<int64_t> perm = ButterflyPermutation(d_in, blocks_ >> f, b_ / 2, factors_ - 1);
      // P[i, perm[i]] = 1: (x P)_c = x_{perm⁻¹(c)}, (x Pᵀ)_c = x_{perm(c)}.
      std::vector<int64_t> inverse(d_in);
      for (int64_t i = 0; i < d_in; ++i) inverse[perm[i]] = i;
      perm_.push_back(torch::tensor(perm, torch::kLong).to(long_opts.device()));
      inverse_.push_back(torch::tensor(inverse, torch::kLong).to(long_opts.device()));
    }
    r_ = AddTrainable("boft_R", torch::zeros({factors_, blocks_, b_, b_}, Options()));
    s_ = AddTrainable("boft_s", torch::ones({Shape().d_out, 1}, Options()));
  }

  std::vector<NamedTensor> Trainable() override { return TrainableList(); }
  int64_t ParameterCount() const override { return count_; }
  bool CudaGraphSafe() const override { return true; }
  std::map<std::string, double> Diagnostics() override {
    return {{"orthogonality_error", OrthogonalityError(Blocks())}};
  }

 protected:
  // ((x M) Wᵀ) ⊙ sᵀ = x W_effᵀ: the butterfly rotates the weight's d_out rows rather than the
  // N ≫ d_out rows of x.
  torch::Tensor AdaptedForward(const torch::Tensor& x) override {
    return torch::nn::functional::linear(x, ComputeWeight(), bias_);
  }
  // W_eff = (W Mᵀ) ⊙ s with Mᵀ = M_0ᵀ ⋯ M_{F−1}ᵀ, M_fᵀ = P_f B_fᵀ P_fᵀ, applied to W's rows.
  torch::Tensor ComputeWeight() override { return RotateRowsByTranspose(weight_) * s_; }

 private:
  torch::Tensor Blocks() {
    const auto dtype = r_.scalar_type();
    torch::Tensor flat = r_.reshape({factors_ * blocks_, b_, b_}).to(RotationType(dtype));
    return Cayley(0.5 * (flat - flat.transpose(1, 2))).view({factors_, blocks_, b_, b_}).to(dtype);
  }

  // Rows x times Mᵀ = M_0ᵀ ⋯ M_{F−1}ᵀ, M_fᵀ = P_f B_fᵀ P_fᵀ (M = M_{F−1} ⋯ M_0 rotates inputs).
  torch::Tensor RotateRowsByTranspose(const torch::Tensor& x) {
    torch::Tensor blocks = Blocks();
    const int64_t last = x.dim() - 1;
    torch::Tensor y = x;
    for (int64_t f = 0; f < factors_; ++f) {
      y = y.index_select(last, inverse_[f]);
      y = ApplyBlockDiagonal(y, blocks[f].transpose(1, 2));
      y = y.index_select(last, perm_[f]);
    }
    return y;
  }

  nlohmann::json settings_;
  int64_t count_ = 0, b_ = 0, blocks_ = 0, factors_ = 1;
  std::vector<torch::Tensor> perm_, inverse_;
  torch::Tensor r_, s_;
};

}  // namespace

std::shared_ptr<Adapter> MakeBoft(const std::string&, const AdapterOptions& options, torch::Tensor weight,
                                  torch::Tensor bias, const LinearShape& shape) {
  return std::make_shared<BoftAdapter>(options, std::move(weight), std::move(bias), shape);
}

}  // namespace sweepd::adapters
