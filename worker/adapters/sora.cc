// SORA (Chang et al. 2025), checked against the authors' layer (MaeChd/SORA
// peft/tuners/sora/layer.py): R = (x Wᵀ + b) ⊙ Diag + s · x Aᵀ Bᵀ, then y = R (I + s_p K) with
// K = C Dᵀ − D Cᵀ (skew), C, D [d_out, r_p], s_p = min(1, initial_s_p / (‖C‖_F + ‖D‖_F + 1e-6)).
// R K is computed as (R C) Dᵀ − (R D) Cᵀ: no d_out×d_out matrix (cost O(N d_out r_p)), in one
// GEMM pair of width 2r_p that accumulates into R. (Folding R C = x (W'ᵀ C) + b' C into LoRA's
// branch avoids the [N, d_out] passes but measured slower on an H200; see docs/benchmarks.md.)
// Option rotation=exact uses exp(s_p K) instead of its first-order Taylor form, still without a
// d_out×d_out matrix: with U = [C D], J = [[0, I], [−I, 0]], K = U J Uᵀ and
// exp(s_p K) = I + U φ(s_p J UᵀU) s_p J Uᵀ, φ(z) = (eᶻ − 1)/z taken from the matrix exponential
// of the 4r_p×4r_p block [[A, I], [0, 0]]. Diagnostics report ‖exp(s_pK) − (I + s_pK)‖_F and the
// bound e^{‖s_pK‖} − 1 − ‖s_pK‖ of the paper's Theorem 2.
// Merge (row-vector y = R P ⇒ W_eff = Pᵀ W'): W_eff = (I − s_p K) W', b_eff = (I − s_p K)(Diag ⊙ b)
// with W' = diag(Diag) W + s B A. The authors' get_delta_weight returns P W' − W with P = s_p K,
// dropping the W' term (and transposing P); we do not follow it.
#include <cmath>
#include <stdexcept>

#include "worker/adapters/methods.h"
#include "worker/adapters/pre_diag.h"
#include "worker/adapters/rotations.h"

namespace sweepd::adapters {
namespace {

class SoraAdapter : public PreDiagAdapter {
 public:
  SoraAdapter(const AdapterOptions& o, torch::Tensor weight, torch::Tensor bias, LinearShape shape)
      : PreDiagAdapter("sora", o, std::move(weight), std::move(bias), std::move(shape)) {
    r_p_ = o.Int("r_p", 4);
    if (r_p_ <= 0) throw std::invalid_argument("sora option 'r_p' must be positive");
    initial_s_p_ = o.Number("initial_s_p", 1.0);
    exact_ = o.Choice("rotation", "taylor", {"taylor", "exact"}) == "exact";
    torch::Tensor c = torch::empty({Shape().d_out, r_p_}, Options());
    {
      torch::NoGradGuard no_grad;  // Kaiming-uniform, a = √5, fan_out = d_out
      const double bound = 1.0 / std::sqrt(static_cast<double>(Shape().d_out));
      c.uniform_(-bound, bound);
    }
    C_ = AddTrainable("lora_C.weight", c);
    D_ = AddTrainable("lora_D.weight", c.detach().clone());  // D = C: K = 0 at init
  }

  std::map<std::string, double> Diagnostics() override {
    torch::NoGradGuard no_grad;
    const double sp = Sp().item<double>();
    torch::Tensor U = torch::cat({C_, D_}, 1).to(torch::kFloat64);
    torch::Tensor G = torch::matmul(U.t(), U);
    torch::Tensor M = J(torch::kFloat64) * sp;
    torch::Tensor X = torch::matmul(Phi(torch::matmul(M, G)) - Eye(2 * r_p_, G.options()), M);
    const double skew = FrobeniusOfUXUt(G, M);
    const double taylor = FrobeniusOfUXUt(G, X);
    return {{"sora_s_p", sp},
            {"sora_skew_norm", skew},
            {"sora_taylor_error", taylor},
            {"sora_taylor_bound", std::exp(skew) - 1.0 - skew}};
  }

 protected:
  torch::Tensor AdaptedForward(const torch::Tensor& x) override {
    torch::Tensor r = Conditioned(x);
    torch::Tensor sp = Sp();
    if (!exact_) {
      // r (I + s_p K) = r + (r [C D]) (s_p [D −C])ᵀ: two thin GEMMs of width 2r_p, the second
      // accumulating into r.
      torch::Tensor flat = r.reshape({-1, Shape().d_out});
      torch::Tensor rc = torch::matmul(flat, torch::cat({C_, D_}, 1));  // [N, 2r_p]
      torch::Tensor right = torch::cat({D_, -C_}, 1) * sp;              // [d_out, 2r_p]
      return torch::addmm(flat, rc, right.t()).view(r.sizes());
    }
    torch::Tensor U = torch::cat({C_, D_}, 1);
    torch::Tensor M = J(U.scalar_type()) * sp;
    torch::Tensor core = torch::matmul(Phi(torch::matmul(M, torch::matmul(U.t(), U))), M);
    return r + torch::matmul(torch::matmul(torch::matmul(r, U), core), U.t());
  }

  torch::Tensor ComputeWeight() override { return RotateColumns(PreDiagAdapter::ComputeWeight()); }
  torch::Tensor ComputeBias() override {
    torch::Tensor b = PreDiagAdapter::ComputeBias();
    return b.defined() ? RotateColumns(b.unsqueeze(1)).squeeze(1) : b;
  }

 private:
  torch::Tensor Sp() { return torch::clamp_max(initial_s_p_ / (C_.norm() + D_.norm() + 1e-6), 1.0); }

  torch::Tensor J(torch::ScalarType dtype) const {
    auto opts = Options().dtype(dtype);
    torch::Tensor j = torch::zeros({2 * r_p_, 2 * r_p_}, opts);
    j.narrow(0, 0, r_p_).narrow(1, r_p_, r_p_).copy_(Eye(r_p_, opts));
    j.narrow(0, r_p_, r_p_).narrow(1, 0, r_p_).copy_(-Eye(r_p_, opts));
    return j;
  }

  // φ(A) = Σ A^k/(k+1)! from exp([[A, I], [0, 0]]) = [[e^A, φ(A)], [0, I]].
  static torch::Tensor Phi(const torch::Tensor& a_in) {
    torch::Tensor a = a_in.to(RotationType(a_in.scalar_type()));
    const int64_t m = a.size(0);
    torch::Tensor big = torch::zeros({2 * m, 2 * m}, a.options());
    big = torch::cat({torch::cat({a, Eye(m, a.options())}, 1), big.narrow(0, m, m)}, 0);
    return torch::matrix_exp(big).narrow(0, 0, m).narrow(1, m, m).to(a_in.scalar_type());
  }

  // ‖U X Uᵀ‖_F = sqrt(tr(G X G Xᵀ)), G = UᵀU.
  static double FrobeniusOfUXUt(const torch::Tensor& g, const torch::Tensor& x) {
    return std::sqrt(std::max(0.0, torch::trace(torch::matmul(torch::matmul(g, x), torch::matmul(g, x.t()))).item<double>()));
  }

  // Pᵀ v for columns v [d_out, k]: Taylor (I − s_p K) v; exact exp(s_p K)ᵀ v = v + U Mᵀ φᵀ Uᵀ v.
  torch::Tensor RotateColumns(const torch::Tensor& v) {
    torch::Tensor sp = Sp();
    if (!exact_) {
      return v - sp * (torch::matmul(C_, torch::matmul(D_.t(), v)) - torch::matmul(D_, torch::matmul(C_.t(), v)));
    }
    torch::Tensor U = torch::cat({C_, D_}, 1);
    torch::Tensor M = J(U.scalar_type()) * sp;
    torch::Tensor core = torch::matmul(Phi(torch::matmul(M, torch::matmul(U.t(), U))), M);
    return v + torch::matmul(U, torch::matmul(core.t(), torch::matmul(U.t(), v)));
  }

  int64_t r_p_ = 4;
  double initial_s_p_ = 1.0;
  bool exact_ = false;
  torch::Tensor C_, D_;
};

}  // namespace

std::shared_ptr<Adapter> MakeSora(const std::string&, const AdapterOptions& options, torch::Tensor weight,
                                  torch::Tensor bias, const LinearShape& shape) {
  return std::make_shared<SoraAdapter>(options, std::move(weight), std::move(bias), shape);
}

}  // namespace sweepd::adapters
