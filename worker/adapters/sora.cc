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
// backward written out: r + (r U) (s_p V)ᵀ with U = [C D], V = [D −C] = U Jᵀ, J = [[0, I], [−I, 0]]
// (two thin GEMMs of width 2r_p, the second accumulating into r). Autograd over the same
// expression recorded about twenty nodes per layer; this is one, and its backward is four
// GEMMs over the N rows and a handful of [d_out, 2r_p]-sized kernels (each small kernel costs
// launch latency even inside a CUDA graph, and a layer has two dozen of them otherwise).
// Gradients, for g = ∂L/∂out and P = g (s_p V) [N, 2r_p]:
//   ∂r = g + P Uᵀ,  ∂U = rᵀ P + s_p ∂V J  with ∂V = gᵀ (r U),
//   and through s_p (when raw = a/q ≤ 1, q = ‖C‖ + ‖D‖ + 1e-6): ∂s_p = ⟨∂V, V⟩, ∂q = −∂s_p a/q²
//   = −∂s_p raw²/a, ∂C += ∂q C/‖C‖, ∂D += ∂q D/‖D‖ (zero where a norm is zero, as torch's norm
//   backward has it).
// s_p before its clamp at 1, a / (‖C‖_F + ‖D‖_F + 1e-6), from the sum of the two norms.
torch::Tensor RawSp(const torch::Tensor& norm_sum, double a) { return (norm_sum + 1e-6).reciprocal() * a; }

// J = [[0, I], [−I, 0]] (2r × 2r): U Jᵀ = [D −C] for U = [C D].
torch::Tensor SkewPairing(int64_t r, const torch::TensorOptions& options) {
  torch::Tensor j = torch::zeros({2 * r, 2 * r}, options);
  j.narrow(0, 0, r).narrow(1, r, r).copy_(Eye(r, options));
  j.narrow(0, r, r).narrow(1, 0, r).copy_(-Eye(r, options));
  return j;
}

struct TaylorRotation : public torch::autograd::Function<TaylorRotation> {
  // Under CUDA autocast (float32 parameters, bf16 compute) the GEMMs run in r's dtype, as
  // autocast would run them; autocast is off in backward, so the function casts for itself and
  // hands back C's and D's gradients in their own dtype. s_p stays in the parameters' dtype.
  // `j` is SkewPairing(r_p) in the parameters' dtype and device (the backward's ∂V J).
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& r,
                               const torch::Tensor& c, const torch::Tensor& d, const torch::Tensor& j, double a) {
    const int64_t d_out = c.size(0), rp = c.size(1);
    const torch::ScalarType dt = r.scalar_type();
    torch::Tensor u = torch::cat({c, d}, 1);                                   // [d_out, 2r_p]
    torch::Tensor norms = at::linalg_vector_norm(u.view({d_out, 2, rp}), 2, {0, 2});  // [‖C‖, ‖D‖]
    torch::Tensor raw = RawSp(norms.sum(), a);
    torch::Tensor sp = raw.clamp_max(1.0);
    // [D −C] by concatenation, not as U Jᵀ: under autocast a GEMM here would round it to bf16.
    torch::Tensor v = torch::cat({d, c.neg()}, 1);
    torch::Tensor u_c = u.to(dt);
    torch::Tensor vsp_c = (v * sp).to(dt);
    torch::Tensor flat = r.reshape({-1, d_out});
    torch::Tensor rc = torch::mm(flat, u_c);                                    // [N, 2r_p]
    ctx->save_for_backward({flat, u, u_c, v, vsp_c, rc, j, sp, raw, norms});
    ctx->saved_data["a"] = a;
    return torch::addmm(flat, rc, vsp_c.t()).view(r.sizes());
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const torch::Tensor &flat = saved[0], &u = saved[1], &u_c = saved[2], &v = saved[3], &vsp_c = saved[4],
                        &rc = saved[5], &j = saved[6], &sp = saved[7], &raw = saved[8], &norms = saved[9];
    const double a = ctx->saved_data["a"].toDouble();
    const int64_t d_out = u.size(0), rp = u.size(1) / 2;
    const torch::ScalarType pt = u.scalar_type();
    const torch::Tensor& g_out = grads[0];
    torch::Tensor g = g_out.reshape({-1, d_out}).to(flat.scalar_type());
    torch::Tensor p = torch::mm(g, vsp_c);                                      // [N, 2r_p]
    torch::Tensor grad_r = torch::addmm(g, p, u_c.t()).view(g_out.sizes());
    torch::Tensor grad_v = torch::mm(g.t(), rc).to(pt);                         // [d_out, 2r_p]
    torch::Tensor grad_u = torch::addmm(torch::mm(flat.t(), p).to(pt), grad_v, j * sp);
    // Through s_p: ∂q = −∂s_p raw²/a where raw ≤ 1 (clamp_max passes the gradient at the
    // bound), then U's columns over their half's norm.
    torch::Tensor grad_q = (grad_v * v).sum() * torch::where(raw <= 1.0, raw * raw / -a, torch::zeros_like(raw));
    torch::Tensor per_half = torch::where(norms == 0, torch::zeros_like(norms), grad_q / norms);  // [2]
    grad_u.view({d_out, 2, rp}).addcmul_(u.view({d_out, 2, rp}), per_half.view({1, 2, 1}));
    return {grad_r, grad_u.narrow(1, 0, rp), grad_u.narrow(1, rp, rp), torch::Tensor(), torch::Tensor()};
  }
};

class SoraAdapter : public PreDiagAdapter {
 public:
  SoraAdapter(const AdapterOptions& o, torch::Tensor weight, torch::Tensor bias, LinearShape shape)
      : PreDiagAdapter("sora", o, std::move(weight), std::move(bias), std::move(shape)) {
    r_p_ = o.Int("r_p");
    if (r_p_ <= 0) throw std::invalid_argument("sora option 'r_p' must be positive");
    initial_s_p_ = o.Number("initial_s_p");
    if (!(initial_s_p_ > 0)) {
      throw std::invalid_argument("sora option 'initial_s_p' must be positive (0 leaves no rotation: that is pre_diag)");
    }
    exact_ = o.Choice("rotation") == "exact";
    torch::Tensor c = torch::empty({Shape().d_out, r_p_}, Options());
    {
      torch::NoGradGuard no_grad;  // Kaiming-uniform, a = √5, fan_out = d_out
      const double bound = 1.0 / std::sqrt(static_cast<double>(Shape().d_out));
      c.uniform_(-bound, bound);
    }
    C_ = AddTrainable("lora_C.weight", c);
    D_ = AddTrainable("lora_D.weight", c.detach().clone());  // D = C: K = 0 at init
    pairing_ = SkewPairing(r_p_, Options());
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
    if (!exact_) {
      if (pairing_.device() != C_.device() || pairing_.scalar_type() != C_.scalar_type()) {
        pairing_ = pairing_.to(C_.options());  // the module moved after construction
      }
      return TaylorRotation::apply(r, C_, D_, pairing_, initial_s_p_);
    }
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
  torch::Tensor Sp() { return torch::clamp_max(RawSp(C_.norm() + D_.norm(), initial_s_p_), 1.0); }

  torch::Tensor J(torch::ScalarType dtype) const { return SkewPairing(r_p_, Options().dtype(dtype)); }

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
  torch::Tensor pairing_;  // SkewPairing(r_p) in C's dtype and device
};

}  // namespace

std::shared_ptr<Adapter> MakeSora(const std::string&, const AdapterOptions& options, torch::Tensor weight,
                                  torch::Tensor bias, const LinearShape& shape) {
  return std::make_shared<SoraAdapter>(options, std::move(weight), std::move(bias), shape);
}

}  // namespace sweepd::adapters
