// The fused rotary embedding and SwiGLU (worker/models/fused_ops.h) against the unfused
// operations they replace: transformers' `q * cos + rotate_half(q) * sin` in the [B, H, T, D]
// layout and `silu(gate) * up`, forward bit for bit in float32 and bfloat16, gradients in
// float64. On this machine the ATen path runs; the CUDA kernels are compared with it on the GPU
// machine (SWEEPD_FUSED_KERNELS=0 against the default, docs/benchmarks.md).
#include "worker/models/fused_ops.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/process.h"
#include "worker/models/rope.h"

namespace sweepd::models {
namespace {

torch::Tensor RotateHalf(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// transformers' apply_rotary_pos_emb on x [B, T, H, D] through its own [B, H, T, D] layout.
torch::Tensor Reference(const torch::Tensor& x, const RopeTables& t) {
  auto q = x.transpose(1, 2);
  const int64_t rotary = t.cos.size(-1);
  auto c = t.cos.unsqueeze(1).to(x.scalar_type()), s = t.sin.unsqueeze(1).to(x.scalar_type());
  auto rot = q.narrow(-1, 0, rotary);
  auto out = rot * c + RotateHalf(rot) * s;
  if (rotary < q.size(-1)) out = torch::cat({out, q.narrow(-1, rotary, q.size(-1) - rotary)}, -1);
  return out.transpose(1, 2);
}

RopeTables Tables(int64_t batch, int64_t seq, int64_t head_dim, double partial, bool per_row) {
  RopeConfig rope;
  rope.theta = 10000.0;
  rope.partial_rotary_factor = partial;
  torch::Tensor positions = torch::arange(seq, torch::kInt64).unsqueeze(0);
  // Packed rows restart their positions, so the tables differ per row.
  if (per_row) positions = torch::stack({positions[0], torch::remainder(positions[0] + 3, 4)}).narrow(0, 0, batch);
  return MakeRopeTables(rope, head_dim, positions);
}

struct Shape {
  int64_t batch, seq, heads, head_dim;
  double partial;
  bool per_row;
};

const std::vector<Shape> kShapes = {
    {2, 5, 3, 12, 1.0, false},  // half = 6: not a power of two
    {2, 7, 2, 16, 1.0, true},   // tables per row (packed documents)
    {1, 4, 4, 16, 0.5, false},  // partial rotary: 8 of 16 features rotated
    {2, 3, 1, 128, 1.0, true},  // Llama's head size
};

TEST(FusedOps, RotaryEmbeddingForwardEqualsTransformersBitForBit) {
  for (const auto& sh : kShapes) {
    const RopeTables t = Tables(sh.batch, sh.seq, sh.head_dim, sh.partial, sh.per_row);
    for (auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat64}) {
      torch::manual_seed(1);
      auto x = torch::randn({sh.batch, sh.seq, sh.heads, sh.head_dim}).to(dtype);
      auto fused = RotaryEmbedding(x, t.cos, t.sin);
      ASSERT_EQ(fused.sizes(), x.sizes());
      EXPECT_TRUE(torch::equal(fused, Reference(x, t))) << "D " << sh.head_dim << " dtype " << dtype;
      // The rotation moves the values (a test that passes for the identity would prove nothing).
      EXPECT_FALSE(torch::equal(fused, x));
    }
  }
}

TEST(FusedOps, RotaryEmbeddingGradientsEqualAutogradOfTransformersFormula) {
  for (const auto& sh : kShapes) {
    const RopeTables t = Tables(sh.batch, sh.seq, sh.head_dim, sh.partial, sh.per_row);
    torch::manual_seed(2);
    auto x = torch::randn({sh.batch, sh.seq, sh.heads, sh.head_dim}, torch::kFloat64).requires_grad_(true);
    auto w = torch::randn({sh.batch, sh.seq, sh.heads, sh.head_dim}, torch::kFloat64);
    auto gx = torch::autograd::grad({(RotaryEmbedding(x, t.cos, t.sin) * w).sum()}, {x})[0];
    auto ref = torch::autograd::grad({(Reference(x, t) * w).sum()}, {x})[0];
    EXPECT_LT((gx - ref).abs().max().item<double>(), 1e-12) << "D " << sh.head_dim;
    // A non-contiguous incoming gradient (attention's backward hands one back) gives the same.
    auto wt = w.transpose(1, 2).contiguous().transpose(1, 2);
    auto gt = torch::autograd::grad({(RotaryEmbedding(x, t.cos, t.sin) * wt).sum()}, {x})[0];
    EXPECT_LT((gt - ref).abs().max().item<double>(), 1e-12);
  }
}

TEST(FusedOps, RotaryEmbeddingBfloat16GradientsRoundAsTheUnfusedChain) {
  const RopeTables t = Tables(2, 6, 32, 1.0, true);
  torch::manual_seed(3);
  auto x = torch::randn({2, 6, 4, 32}).to(torch::kBFloat16).requires_grad_(true);
  auto w = torch::randn({2, 6, 4, 32}).to(torch::kBFloat16);
  auto gx = torch::autograd::grad({(RotaryEmbedding(x, t.cos, t.sin) * w).sum()}, {x})[0];
  auto ref = torch::autograd::grad({(Reference(x, t) * w).sum()}, {x})[0];
  // Each gradient element is one rounded sum of two rounded products, as in the unfused chain.
  EXPECT_TRUE(torch::equal(gx, ref));
}

TEST(FusedOps, SwiGluEqualsSiluTimesUp) {
  for (auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat64}) {
    torch::manual_seed(4);
    auto g = (3 * torch::randn({3, 5, 24})).to(dtype), u = torch::randn({3, 5, 24}).to(dtype);
    EXPECT_TRUE(torch::equal(SwiGlu(g, u), torch::silu(g) * u)) << dtype;
  }
  torch::manual_seed(5);
  auto g = (3 * torch::randn({4, 40}, torch::kFloat64)).requires_grad_(true);
  auto u = torch::randn({4, 40}, torch::kFloat64).requires_grad_(true);
  auto w = torch::randn({4, 40}, torch::kFloat64);
  auto fused = torch::autograd::grad({(SwiGlu(g, u) * w).sum()}, {g, u});
  auto ref = torch::autograd::grad({(torch::silu(g) * u * w).sum()}, {g, u});
  EXPECT_LT((fused[0] - ref[0]).abs().max().item<double>(), 1e-12);
  EXPECT_LT((fused[1] - ref[1]).abs().max().item<double>(), 1e-12);
  EXPECT_GT(fused[0].abs().max().item<double>(), 0.1);
}

TEST(FusedOps, CpuRunsTheAtenOperations) {
  auto x = torch::randn({1, 2, 1, 4});
  const RopeTables t = Tables(1, 2, 4, 1.0, false);
  RotaryEmbedding(x, t.cos, t.sin);
  EXPECT_EQ(FusedKernelStatus().rfind("aten", 0), 0u) << FusedKernelStatus();
}

TEST(FusedOps, MalformedSwitchIsRefusedByName) {
  std::string output;
  const int rc = testing::RunCommand(
      {"/usr/bin/env", "SWEEPD_FUSED_KERNELS=yes", std::string(SWEEPD_BIN_DIR) + "/sweep-train", "probe"}, &output);
  EXPECT_EQ(rc, 2) << output;
  EXPECT_NE(output.find("SWEEPD_FUSED_KERNELS: 'yes' is not 0 or 1"), std::string::npos) << output;
  EXPECT_EQ(testing::RunCommand(
                {"/usr/bin/env", "SWEEPD_FUSED_KERNELS=0", std::string(SWEEPD_BIN_DIR) + "/sweep-train", "probe"},
                &output),
            0)
      << output;
}

}  // namespace
}  // namespace sweepd::models
