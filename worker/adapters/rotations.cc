// Shared rotation maths; see rotations.h. Follows PEFT 0.21's oft/boft layers for the
// packing and Cayley conventions and the public JORA implementation's rotation.py for Givens.
#include "worker/adapters/rotations.h"

#include <vector>

namespace sweepd::adapters {

torch::Tensor SkewFromPacked(const torch::Tensor& packed, int64_t n) {
  const int64_t batch = packed.size(0);
  torch::Tensor idx = torch::triu_indices(n, n, 1, torch::TensorOptions().dtype(torch::kLong).device(packed.device()));
  torch::Tensor flat = idx[0] * n + idx[1];  // positions of the upper triangle in n·n
  torch::Tensor upper = torch::zeros({batch, n * n}, packed.options()).index_copy(1, flat, packed);
  upper = upper.view({batch, n, n});
  return upper - upper.transpose(1, 2);
}

torch::Tensor PackedFromSkew(const torch::Tensor& skew) {
  const int64_t n = skew.size(-1);
  torch::Tensor idx = torch::triu_indices(n, n, 1, torch::TensorOptions().dtype(torch::kLong).device(skew.device()));
  return skew.reshape({skew.size(0), n * n}).index_select(1, idx[0] * n + idx[1]);
}

torch::Tensor Cayley(const torch::Tensor& skew) {
  const int64_t n = skew.size(-1);
  torch::Tensor eye = torch::eye(n, skew.options()).expand_as(skew);
  // X (I + Q) = I − Q  ⇔  (I + Q)ᵀ Xᵀ = (I − Q)ᵀ.
  // linalg_solve_ex: I + Q is invertible for any skew Q, and the error check of linalg_solve
  // would read its info on the host (a device sync per layer and step).
  return std::get<0>(torch::linalg_solve_ex((eye + skew).transpose(-2, -1), (eye - skew).transpose(-2, -1)))
      .transpose(-2, -1);
}

torch::Tensor CayleyNeumann(const torch::Tensor& skew, int64_t terms) {
  const int64_t n = skew.size(-1);
  torch::Tensor r = torch::eye(n, skew.options()).expand_as(skew).clone();
  torch::Tensor power = skew;
  for (int64_t k = 1; k < terms; ++k) {
    r = r + (k + 1 == terms ? 1.0 : 2.0) * power;
    if (k + 1 < terms) power = torch::matmul(power, skew);
  }
  return r;
}

torch::Tensor ApplyBlockDiagonal(const torch::Tensor& x, const torch::Tensor& blocks) {
  const int64_t b = blocks.size(0), n = blocks.size(1);
  // [N, B, n] → [B, N, n] · [B, n, n]: one batched GEMM over the blocks, no block-diagonal
  // matrix (the strided view goes to the batched GEMM without a copy).
  torch::Tensor rows = x.reshape({-1, b, n}).transpose(0, 1);
  return torch::bmm(rows, blocks).transpose(0, 1).reshape(x.sizes());
}

torch::Tensor ApplyGivens(const torch::Tensor& x, const torch::Tensor& pairs, const torch::Tensor& c,
                          const torch::Tensor& s, bool in_place) {
  const int64_t n = pairs.size(0);
  if (n == 0) return x;
  const int64_t last = x.dim() - 1;
  torch::Tensor idx = pairs.reshape({-1});  // i0, j0, i1, j1, ...
  torch::Tensor gathered = x.index_select(last, idx);
  std::vector<int64_t> sizes = gathered.sizes().vec();
  sizes.back() = n;
  sizes.push_back(2);
  torch::Tensor v = gathered.view(sizes);  // [..., n, 2] = (x_i, x_j)
  torch::Tensor cc = torch::stack({c, c}, 1).to(x.scalar_type());
  torch::Tensor ss = torch::stack({s, -s}, 1).to(x.scalar_type());
  // (c x_i + s x_j, c x_j + (−s) x_i): the same products and sums, rounded the same way, as
  // rotating each coordinate on its own.
  torch::Tensor rotated = (v * cc + v.flip(-1) * ss).view(gathered.sizes());
  // Scattered as a change, x + (rotated − x): index_add's backward passes the gradient of x
  // through as it is, where index_copy's would copy it with the rotated columns zeroed (one more
  // pass over the activations per side). An idle pair's change is exactly 0.
  torch::Tensor change = rotated - gathered;
  if (in_place) return x.index_add_(last, idx, change);
  return x.index_add(last, idx, change);
}

torch::ScalarType RotationType(torch::ScalarType t) {
  return (t == torch::kHalf || t == torch::kBFloat16) ? torch::kFloat32 : t;
}

double OrthogonalityError(const torch::Tensor& r) {
  torch::NoGradGuard no_grad;
  torch::Tensor m = r.detach().to(torch::kFloat64);
  const int64_t n = m.size(-1);
  torch::Tensor gram = torch::matmul(m.transpose(-2, -1), m) - torch::eye(n, m.options());
  torch::Tensor err = gram.reshape({-1, n * n}).norm(2, 1);
  return err.numel() == 0 ? 0.0 : err.max().item<double>();
}

}  // namespace sweepd::adapters
