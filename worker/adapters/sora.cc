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

// r (I + s_p K) with s_p = min(1, a / (‖C‖_F + ‖D‖_F + 1e-6)), as one autograd node with its
// backward written out: r + (r U) Vᵀ with U = [C D], V = s_p [D −C] (two thin GEMMs of width
// 2r_p, the second accumulating into r). Autograd over the same expression recorded about
// twenty nodes per layer (the norms, the clamp, the concatenations, the GEMMs), each a host
// round through the autograd engine; this is one, and saves r, U, [D −C] and r U
// (autograd saved r, U, V and r U).
// Gradients, for g = ∂L/∂out and P = g V [N, 2r_p]:
//   ∂r = g + P Uᵀ,  ∂U = rᵀ P,  ∂V = gᵀ (r U),
//   ∂C = ∂U[:, :r_p] − s_p ∂V[:, r_p:],  ∂D = ∂U[:, r_p:] + s_p ∂V[:, :r_p],
//   and through s_p (when a/q ≤ 1, q = ‖C‖ + ‖D‖ + 1e-6): ∂s_p = ⟨∂V, [D −C]⟩,
//   ∂C += ∂s_p (−a/q²) C/‖C‖, ∂D += ∂s_p (−a/q²) D/‖D‖ (zero where a norm is zero, as torch's
//   norm backward has it).
// q = ‖C‖_F + ‖D‖_F + 1e-6, and a / q: s_p before its clamp at 1.
torch::Tensor NormSum(const torch::Tensor& norm_c, const torch::Tensor& norm_d) { return norm_c + norm_d + 1e-6; }
torch::Tensor RawSp(const torch::Tensor& norm_c, const torch::Tensor& norm_d, double a) {
  return NormSum(norm_c, norm_d).reciprocal() * a;
}

struct TaylorRotation : public torch::autograd::Function<TaylorRotation> {
  // Under CUDA autocast (float32 parameters, bf16 compute) the GEMMs run in r's dtype, as
  // autocast would run them; autocast is off in backward, so the function casts for itself and
  // hands back C's and D's gradients in their own dtype. s_p stays in the parameters' dtype.
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& r,
                               const torch::Tensor& c, const torch::Tensor& d, double a) {
    const int64_t d_out = c.size(0);
    const torch::ScalarType dt = r.scalar_type();
    torch::Tensor nc = c.norm(), nd = d.norm();
    torch::Tensor raw = RawSp(nc, nd, a);
    torch::Tensor sp = torch::clamp_max(raw, 1.0);
    torch::Tensor u = torch::cat({c, d}, 1).to(dt);                // [d_out, 2r_p]
    torch::Tensor v_raw = torch::cat({d, c.neg()}, 1).to(dt);      // [D −C]
    torch::Tensor flat = r.reshape({-1, d_out});
    torch::Tensor rc = torch::mm(flat, u);                         // [N, 2r_p]
    ctx->save_for_backward({flat, u, v_raw, rc, c, d, sp, raw, nc, nd});
    return torch::addmm(flat, rc, (v_raw * sp.to(dt)).t()).view(r.sizes());
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const torch::Tensor &flat = saved[0], &u = saved[1], &v_raw = saved[2], &rc = saved[3], &c = saved[4],
                        &d = saved[5], &sp = saved[6], &raw = saved[7], &nc = saved[8], &nd = saved[9];
    const int64_t d_out = u.size(0), rp = u.size(1) / 2;
    const torch::ScalarType pt = c.scalar_type();
    const torch::Tensor& g_out = grads[0];
    torch::Tensor g = g_out.reshape({-1, d_out}).to(flat.scalar_type());
    torch::Tensor p = torch::mm(g, v_raw * sp.to(v_raw.scalar_type()));  // [N, 2r_p]
    torch::Tensor grad_r = torch::addmm(g, p, u.t()).view(g_out.sizes());
    torch::Tensor grad_u = torch::mm(flat.t(), p).to(pt);          // [d_out, 2r_p]
    torch::Tensor grad_v = torch::mm(g.t(), rc).to(pt);            // [d_out, 2r_p]
    torch::Tensor grad_sp = (grad_v.narrow(1, 0, rp) * d).sum() - (grad_v.narrow(1, rp, rp) * c).sum();
    // ∂L/∂q through s_p = min(1, raw), raw = a/q, q = ‖C‖ + ‖D‖ + 1e-6: −a/q² = −raw/q where
    // raw ≤ 1 (clamp_max passes the gradient at the bound), else 0.
    torch::Tensor grad_q = torch::where(raw <= 1.0, grad_sp * (raw / NormSum(nc, nd)).neg(), torch::zeros_like(grad_sp));
    auto unit = [](const torch::Tensor& t, const torch::Tensor& n) {
      return t * torch::where(n == 0, torch::zeros_like(n), n.reciprocal());
    };
    torch::Tensor grad_c = grad_u.narrow(1, 0, rp) - grad_v.narrow(1, rp, rp) * sp + unit(c, nc) * grad_q;
    torch::Tensor grad_d = grad_u.narrow(1, rp, rp) + grad_v.narrow(1, 0, rp) * sp + unit(d, nd) * grad_q;
    return {grad_r, grad_c, grad_d, torch::Tensor()};
  }
};

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
    if (!exact_) return TaylorRotation::apply(r, C_, D_, initial_s_p_);
    torch::Tensor sp = Sp();
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
  torch::Tensor Sp() { return torch::clamp_max(RawSp(C_.norm(), D_.norm(), initial_s_p_), 1.0); }

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
