// Singular value entropy, effective rank and stable rank (see spectrum.h for the definitions).
#include "worker/eval/spectrum.h"

#include <cmath>

namespace sweepd::eval {

namespace {

// −Σ w_i ln w_i of the normalised weights w = v / Σv (zero weights contribute nothing).
double ShannonEntropy(const torch::Tensor& v) {
  torch::Tensor w = v / v.sum();
  torch::Tensor nonzero = w.masked_select(w > 0);
  return -(nonzero * nonzero.log()).sum().item<double>();
}

}  // namespace

SpectrumStats SpectrumFromSingularValues(const torch::Tensor& sigma_in, int64_t d_out, int64_t d_in) {
  SpectrumStats s;
  auto sigma = sigma_in.to(torch::kFloat64).flatten();
  const double top = sigma.numel() ? sigma.max().item<double>() : 0.0;
  if (top <= 0) return s;  // ΔW = 0: no spectrum to speak of
  auto energy = sigma.pow(2);
  s.entropy = ShannonEntropy(energy);
  const double max_entropy = std::log(static_cast<double>(std::min(d_out, d_in)));
  s.normalized_entropy = max_entropy > 0 ? s.entropy / max_entropy : 0.0;
  s.effective_rank = std::exp(ShannonEntropy(sigma));
  s.stable_rank = energy.sum().item<double>() / (top * top);
  return s;
}

SpectrumStats SpectrumOfDeltaByGram(const torch::Tensor& delta) {
  torch::NoGradGuard no_grad;
  auto d = delta.detach().to(torch::kFloat64);
  auto gram = d.size(0) <= d.size(1) ? torch::matmul(d, d.t()) : torch::matmul(d.t(), d);
  auto lambda = torch::linalg_eigvalsh(gram, "L").to(torch::kCPU);
  // Squaring puts the Gram's rounding (about n·ε·λ_max) where σ² of a rank-deficient ΔW's zero
  // directions would be: eigenvalues below 1e-12·λ_max (σ below 1e-6·σ_max) count as zero.
  const double cutoff = 1e-12 * std::max(0.0, lambda.max().item<double>());
  lambda = torch::where(lambda > cutoff, lambda, torch::zeros_like(lambda));
  return SpectrumFromSingularValues(lambda.sqrt(), d.size(0), d.size(1));
}

SpectrumStats SpectrumOfDelta(const torch::Tensor& delta) {
  if (!delta.device().is_cpu()) return SpectrumOfDeltaByGram(delta);
  torch::NoGradGuard no_grad;
  auto d = delta.detach().to(torch::kCPU, torch::kFloat64);
  auto sigma = std::get<1>(torch::svd(d, /*some=*/true, /*compute_uv=*/false));
  return SpectrumFromSingularValues(sigma, d.size(0), d.size(1));
}

SpectrumStats SpectrumOfLowRank(const torch::Tensor& b, const torch::Tensor& a) {
  torch::NoGradGuard no_grad;
  auto bb = b.detach().to(torch::kCPU, torch::kFloat64);
  auto aa = a.detach().to(torch::kCPU, torch::kFloat64);
  auto rb = std::get<1>(torch::linalg_qr(bb, "reduced"));
  auto ra = std::get<1>(torch::linalg_qr(aa.t(), "reduced"));
  auto sigma = std::get<1>(torch::svd(torch::matmul(rb, ra.t()), true, false));
  return SpectrumFromSingularValues(sigma, bb.size(0), aa.size(1));
}

}  // namespace sweepd::eval
