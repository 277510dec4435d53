// The spectrum of a weight update (worker/eval/spectrum.h) on two matrices whose two entropies
// order them differently: the SORA paper's singular value entropy (of σ²/Σσ²) ranks A above B,
// Roy and Vetterli's effective rank (of σ/Σσ) ranks B above A. Singular values are chosen; the
// singular vectors are random orthonormal, so the SVD really runs.
#include <cmath>

#include <gtest/gtest.h>

#include "worker/eval/spectrum.h"

namespace sweepd::eval {
namespace {

// Q [n, k] with orthonormal columns (QR of a seeded Gaussian matrix).
torch::Tensor Orthonormal(int64_t n, int64_t k) {
  return std::get<0>(torch::linalg_qr(torch::randn({n, k}, torch::kFloat64), "reduced"));
}

// U diag(σ) Vᵀ of shape [d_out, d_in] with the singular values σ (length min(d_out, d_in)).
torch::Tensor WithSingularValues(const std::vector<double>& sigma, int64_t d_out, int64_t d_in) {
  const int64_t k = static_cast<int64_t>(sigma.size());
  torch::Tensor s = torch::tensor(sigma, torch::kFloat64);
  return torch::matmul(Orthonormal(d_out, k) * s, Orthonormal(d_in, k).t());
}

// Hand computation, natural logs, min(d_out, d_in) = 5 for both (ln 5 = 1.6094379):
//
// A, σ = (1, 1, 1, 0, 0), 5 × 7:
//   paper:  σ² = (1, 1, 1, 0, 0), Σσ² = 3, p = (1/3, 1/3, 1/3)
//           H = −3 · (1/3) ln(1/3) = ln 3 = 1.0986123;  H / ln 5 = 0.6826062
//   Roy–Vetterli: q = σ/Σσ = (1/3, 1/3, 1/3), entropy ln 3, effective rank e^{ln 3} = 3
//   stable rank: Σσ² / σ_max² = 3 / 1 = 3
//
// B, σ = (4, 1, 1, 1, 1), 7 × 5:
//   paper:  σ² = (16, 1, 1, 1, 1), Σσ² = 20, p = (0.8, 0.05, 0.05, 0.05, 0.05)
//           H = −0.8 ln 0.8 − 4 · 0.05 ln 0.05 = 0.8 · 0.2231436 + 0.2 · 2.9957323
//             = 0.1785148 + 0.5991465 = 0.7776613;  H / ln 5 = 0.4831881
//   Roy–Vetterli: Σσ = 8, q = (1/2, 1/8, 1/8, 1/8, 1/8),
//           entropy = (1/2) ln 2 + 4 · (1/8) ln 8 = (1/2) ln 2 + (3/2) ln 2 = 2 ln 2,
//           effective rank e^{2 ln 2} = 4
//   stable rank: 20 / 16 = 1.25
//
// So H(A) = 1.0986 > H(B) = 0.7777, but effective rank(A) = 3 < effective rank(B) = 4.
constexpr double kTol = 1e-7;  // the hand values carry 7 decimals

TEST(SpectrumTest, PaperEntropyAndEffectiveRankOrderTheTwoMatricesOppositely) {
  torch::manual_seed(15);
  const SpectrumStats a = SpectrumOfDelta(WithSingularValues({1, 1, 1, 0, 0}, 5, 7));
  const SpectrumStats b = SpectrumOfDelta(WithSingularValues({4, 1, 1, 1, 1}, 7, 5));

  EXPECT_NEAR(a.entropy, 1.0986123, kTol);
  EXPECT_NEAR(a.normalized_entropy, 0.6826062, kTol);
  EXPECT_NEAR(a.effective_rank, 3.0, 1e-9);
  EXPECT_NEAR(a.stable_rank, 3.0, 1e-9);

  EXPECT_NEAR(b.entropy, 0.7776613, kTol);
  EXPECT_NEAR(b.normalized_entropy, 0.4831881, kTol);
  EXPECT_NEAR(b.effective_rank, 4.0, 1e-9);
  EXPECT_NEAR(b.stable_rank, 1.25, 1e-9);

  EXPECT_GT(a.entropy, b.entropy);
  EXPECT_LT(a.effective_rank, b.effective_rank);
}

TEST(SpectrumTest, LowRankFactorsGiveTheSameNumbersAsTheDenseUpdate) {
  torch::manual_seed(16);
  // B's singular values as LoRA-shaped factors: ΔW = (U diag σ) Vᵀ, U [7, 5], V [9, 5], 7 × 9.
  torch::Tensor u = Orthonormal(7, 5) * torch::tensor({4.0, 1.0, 1.0, 1.0, 1.0}, torch::kFloat64);
  torch::Tensor vt = Orthonormal(9, 5).t();
  const SpectrumStats low = SpectrumOfLowRank(u, vt);
  const SpectrumStats dense = SpectrumOfDelta(torch::matmul(u, vt));
  EXPECT_NEAR(low.entropy, 0.7776613, kTol);
  EXPECT_NEAR(low.effective_rank, 4.0, 1e-9);
  // min(7, 9) = 7 normalises: 0.7776613 / ln 7 (1.9459101) = 0.3996389.
  EXPECT_NEAR(low.normalized_entropy, 0.3996389, kTol);
  EXPECT_NEAR(low.entropy, dense.entropy, 1e-12);
  EXPECT_NEAR(low.effective_rank, dense.effective_rank, 1e-12);
  EXPECT_NEAR(low.stable_rank, dense.stable_rank, 1e-12);
}

TEST(SpectrumTest, GramRouteGivesTheSvdsNumbers) {
  // What accelerators compute (eigenvalues of the smaller Gram matrix) against the CPU's SVD,
  // full rank and rank-deficient, both orientations.
  torch::manual_seed(7);
  const std::vector<torch::Tensor> cases = {
      torch::randn({64, 48}, torch::kFloat64), torch::randn({48, 64}, torch::kFloat64),
      torch::matmul(torch::randn({64, 6}, torch::kFloat64), torch::randn({6, 80}, torch::kFloat64)),
      torch::matmul(Orthonormal(40, 40) * torch::logspace(0, -5, 40, 10, torch::kFloat64), Orthonormal(40, 40).t())};
  for (const torch::Tensor& d : cases) {
    const SpectrumStats svd = SpectrumOfDelta(d);
    const SpectrumStats gram = SpectrumOfDeltaByGram(d);
    EXPECT_NEAR(gram.entropy, svd.entropy, 1e-9 * svd.entropy) << d.sizes();
    EXPECT_NEAR(gram.normalized_entropy, svd.normalized_entropy, 1e-9) << d.sizes();
    EXPECT_NEAR(gram.effective_rank, svd.effective_rank, 1e-6 * svd.effective_rank) << d.sizes();
    EXPECT_NEAR(gram.stable_rank, svd.stable_rank, 1e-9 * svd.stable_rank) << d.sizes();
  }
}

TEST(SpectrumTest, ZeroUpdateReportsZeros) {
  const SpectrumStats z = SpectrumOfDelta(torch::zeros({4, 6}, torch::kFloat64));
  EXPECT_EQ(z.entropy, 0.0);
  EXPECT_EQ(z.normalized_entropy, 0.0);
  EXPECT_EQ(z.effective_rank, 0.0);
  EXPECT_EQ(z.stable_rank, 0.0);
}

}  // namespace
}  // namespace sweepd::eval
