// Shared rotation maths of the orthogonal methods (OFT, BOFT, JORA): packed skew-symmetric
// blocks, Cayley transforms, batched block-diagonal products, Givens rotations on disjoint
// coordinate pairs, and the orthogonality error ‖RᵀR − I‖_F. Row-vector convention: a
// block R acts on x as x R. Everything is batched; nothing syncs with the host.
#pragma once

#include <torch/torch.h>

namespace sweepd::adapters {

// packed [B, n(n−1)/2] (row-major strict upper triangle, torch.triu_indices order) → the
// skew matrices Q = U − Uᵀ [B, n, n].
torch::Tensor SkewFromPacked(const torch::Tensor& packed, int64_t n);
// The strict upper triangles of [B, n, n], packed as above.
torch::Tensor PackedFromSkew(const torch::Tensor& skew);
// Cayley transform (I − Q)(I + Q)⁻¹ of skew blocks [B, n, n] (PEFT's
// torch.linalg.solve(I + Q, I − Q, left=False)); orthogonal for any skew Q. Cayley(−Q) is
// (I + Q)(I − Q)⁻¹, the form docs/methods.md writes for OFT.
torch::Tensor Cayley(const torch::Tensor& skew);
// PEFT 0.21's Cayley–Neumann series (I + Q) Σ_{k=0}^{terms−2} Q^k = I + 2Q + … + 2Q^{t−2} + Q^{t−1},
// a truncation of (I + Q)(I − Q)⁻¹ (approximately orthogonal; the oft_* reference files fix it).
torch::Tensor CayleyNeumann(const torch::Tensor& skew, int64_t terms);
// y = x · blockdiag(blocks) for x [..., B·n], blocks [B, n, n]: y_blk = x_blk R_blk.
torch::Tensor ApplyBlockDiagonal(const torch::Tensor& x, const torch::Tensor& blocks);
// Givens rotations on disjoint pairs [S, 2] (int64) of the last dimension of x:
// x_i ← c x_i + s x_j, x_j ← −s x_i + c x_j, with c, s [S]. All pairs at once: one gather of
// the 2S columns, one rotation of [..., S, 2], one scatter back (exact because the pairs are
// disjoint) that adds the change to x (rounding once more than writing the rotated values: about
// one ulp). A pair with c = 1, s = 0 is left exactly as it was, so a fixed number of slots with
// some of them idle computes what the active pairs alone compute. `in_place` scatters into x
// itself (for an intermediate whose producer does not keep it for its backward).
torch::Tensor ApplyGivens(const torch::Tensor& x, const torch::Tensor& pairs, const torch::Tensor& c,
                          const torch::Tensor& s, bool in_place = false);
// The dtype to build rotations in: float32 for half and bfloat16 (LAPACK/cuSOLVER and
// matrix_exp have no reduced-precision kernels, and orthogonality needs the digits), else `t`.
torch::ScalarType RotationType(torch::ScalarType t);

// Largest ‖RᵀR − I‖_F over the batch of square matrices r [..., n, n] (computed in float64).
double OrthogonalityError(const torch::Tensor& r);

}  // namespace sweepd::adapters
