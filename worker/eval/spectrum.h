// Spectral measures of a weight update ΔW, from its singular values σ_i:
//  - singular value entropy as the SORA paper defines it (Chang et al. 2025, Theorem 1; after
//    Alter, Brown and Botstein 2000): H = −Σ p_i ln p_i with p_i = σ_i² / Σ_j σ_j², and
//    H / ln(min(d_out, d_in)), its share of the largest value a d_out × d_in matrix can reach;
//  - effective rank (Roy and Vetterli 2007): exp(−Σ q_i ln q_i) with q_i = σ_i / Σ_j σ_j;
//  - stable rank ‖ΔW‖_F² / ‖ΔW‖_2².
#pragma once

#include <torch/torch.h>

namespace sweepd::eval {

struct SpectrumStats {
  double entropy = 0;             // nats, of p = σ² / Σσ²
  double normalized_entropy = 0;  // entropy / ln(min(d_out, d_in)), in [0, 1]
  double effective_rank = 0;      // exp(entropy of σ / Σσ), in [1, min(d_out, d_in)]
  double stable_rank = 0;
};

// From singular values (any order) of a d_out × d_in update. A zero update gives all zeros.
SpectrumStats SpectrumFromSingularValues(const torch::Tensor& sigma, int64_t d_out, int64_t d_in);
// Of a dense ΔW [d_out, d_in], in float64: on the CPU by an SVD; on an accelerator by the
// eigenvalues of the smaller Gram matrix (σ_i² = λ_i(ΔWᵀΔW)), computed where ΔW is: a float64
// SVD of a 4096 × 4096 update on the host took tens of seconds, times every adapted layer of a
// 7B model, at the end of every job.
SpectrumStats SpectrumOfDelta(const torch::Tensor& delta);
// The Gram route on any device (SpectrumOfDelta takes it on accelerators; tests compare it with
// the SVD on the CPU). Singular values below 1e-6 of the largest count as zero there.
SpectrumStats SpectrumOfDeltaByGram(const torch::Tensor& delta);
// Of ΔW = B A with B [d_out, r], A [r, d_in], without forming ΔW: with B = Q_B R_B and
// Aᵀ = Q_A R_A, σ(ΔW) = σ(R_B R_Aᵀ), an r × r problem.
SpectrumStats SpectrumOfLowRank(const torch::Tensor& b, const torch::Tensor& a);

}  // namespace sweepd::eval
