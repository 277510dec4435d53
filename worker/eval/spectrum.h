// Spectral measures of a weight update ΔW: singular value entropy (of the normalised
// singular values p_i = σ_i / Σσ) and stable rank ‖ΔW‖_F² / ‖ΔW‖_2².
#pragma once

#include <torch/torch.h>

namespace sweepd::eval {

struct SpectrumStats {
  double entropy = 0;             // nats
  double normalized_entropy = 0;  // entropy / log(min(d_out, d_in)), in [0, 1]
  double stable_rank = 0;
};

// From singular values (any order) of a d_out × d_in update.
SpectrumStats SpectrumFromSingularValues(const torch::Tensor& sigma, int64_t d_out, int64_t d_in);
// Of a dense ΔW [d_out, d_in] (float64 SVD).
SpectrumStats SpectrumOfDelta(const torch::Tensor& delta);
// Of ΔW = B A with B [d_out, r], A [r, d_in], without forming ΔW: with B = Q_B R_B and
// Aᵀ = Q_A R_A, σ(ΔW) = σ(R_B R_Aᵀ), an r × r problem.
SpectrumStats SpectrumOfLowRank(const torch::Tensor& b, const torch::Tensor& a);

}  // namespace sweepd::eval
