// JORA against a step-by-step re-derivation of the public implementation's computation
// (Lucas-Jin-Qh/JORA, src/peft/tuners/jora: rotation.py apply_rotations_torch, core.py,
// magnitude.py compute_oer_scale_softmax / compute_ecd_scale, layer.py compute_delta) in its
// order and dtypes, on shapes and settings the jora_* reference files do not cover: both
// single-sided modes, d_out < d_in and odd sizes, 3-D inputs, and a zero row in W, whose norm
// the OER min-norm guard replaces (the guard is float64 Python arithmetic there).
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "worker/adapters/adapter.h"

namespace sweepd::adapters {
namespace {

using nlohmann::json;
using torch::indexing::Slice;

constexpr double kEps = 1e-8;  // the public JoraConfig's eps, also ours

// apply_rotations_torch: clone, flip for the left side, negate θ, Cayley φ = 2·atan(θ/2),
// both coordinates from the unrotated values, index_copy_ back.
torch::Tensor PublicRotate(const torch::Tensor& x, torch::Tensor pairs, torch::Tensor theta, bool left) {
  const int64_t dim = x.size(-1);
  torch::Tensor y = x.reshape({-1, dim}).clone();
  if (left) {
    pairs = pairs.flip(0);
    theta = theta.flip(0);
  }
  torch::Tensor i = pairs.select(1, 0), j = pairs.select(1, 1);
  torch::Tensor th = theta.view(-1).to(y.scalar_type());
  if (left) th = -th;
  torch::Tensor phi = 2.0 * torch::atan(0.5 * th);
  torch::Tensor c = torch::cos(phi).unsqueeze(0), s = torch::sin(phi).unsqueeze(0);
  torch::Tensor yi = y.index_select(1, i), yj = y.index_select(1, j);
  torch::Tensor new_i = c * yi + s * yj;
  torch::Tensor new_j = -s * yi + c * yj;
  y.index_copy_(1, i, new_i);
  y.index_copy_(1, j, new_j);
  return y.view_as(x);
}

// compute_oer_scale_softmax: total energy and the min-norm guard as Python floats (float64),
// the rest float32; Python's `e / t` on a tensor t is t.reciprocal() * e.
torch::Tensor PublicOerScale(const torch::Tensor& norms32, const torch::Tensor& energy32, const torch::Tensor& logits) {
  const double e = static_cast<double>(energy32.item<float>());
  torch::Tensor p = torch::softmax(logits.to(torch::kFloat32) / std::max(1.0, kEps), 0);
  torch::Tensor target = torch::sqrt(torch::clamp(p * e, kEps));
  const double base_scale = std::sqrt(e / static_cast<double>(norms32.numel()));
  const double min_norm = std::max(kEps * 100, std::min(base_scale * 1e-4, base_scale * 1e-2));
  torch::Tensor raw = target / torch::clamp(norms32, min_norm);
  torch::Tensor actual = (raw * norms32).pow(2).sum();
  return raw * torch::sqrt(actual.reciprocal() * e);
}

// compute_ecd_scale (alpha 0.5, temperature 1).
torch::Tensor PublicEcdScale(const torch::Tensor& norms32, const torch::Tensor& energy32, const torch::Tensor& logits) {
  torch::Tensor z = logits.to(torch::kFloat32) / std::max(1.0, kEps);
  torch::Tensor current = (norms32 * (1.0 + 0.5 * torch::tanh(z))).pow(2).sum();
  return torch::sqrt(energy32 / (current + kEps)) * (1.0 + 0.5 * torch::tanh(z));
}

struct Case {
  int64_t d_out, d_in;
  std::string sided, core, magnitude;
  std::string Name() const {
    return std::to_string(d_out) + "x" + std::to_string(d_in) + " single_sided=" + sided + " core=" + core +
           " magnitude=" + magnitude;
  }
};

// The public layer's forward on a [2, 3, d_in] input with the tensors `t`, and d(Σ y ⊙ g)/d each
// trainable tensor (keyed by our names). `scale_out` receives the magnitude's row scale.
std::pair<torch::Tensor, std::map<std::string, torch::Tensor>> PublicForward(
    const Case& c, const torch::Tensor& w, const torch::Tensor& b, const std::map<std::string, torch::Tensor>& t,
    const torch::Tensor& x, const torch::Tensor& g, torch::Tensor* scale_out) {
  std::map<std::string, torch::Tensor> leaf;
  for (const auto& [name, v] : t) leaf[name] = v.is_floating_point() ? v.clone().requires_grad_(true) : v;
  const int64_t m = std::min(c.d_out, c.d_in);
  torch::Tensor xr = c.sided == "left" ? x : PublicRotate(x, t.at("pairs_R"), leaf.at("theta_R"), false);
  torch::Tensor core;
  if (c.core == "diag") {
    core = xr.index({"...", Slice(0, m)}) * leaf.at("core.diag_params");
  } else if (c.core == "block") {  // BlockCore.apply_to_vector: einsum over [.., blocks, b] rows
    torch::Tensor blocks = leaf.at("core.blocks");
    const int64_t nb = blocks.size(0), bs = blocks.size(1);
    torch::Tensor rows = xr.index({"...", Slice(0, nb * bs)}).reshape({x.size(0), x.size(1), nb, bs});
    torch::Tensor yb = torch::einsum("...nbk,bkj->...nbj", {rows, blocks.transpose(1, 2)}).reshape({x.size(0), x.size(1), -1});
    core = leaf.count("core.diag_remainder")
               ? torch::cat({yb, xr.index({"...", Slice(nb * bs, m)}) * leaf.at("core.diag_remainder")}, -1)
               : yb;
  } else {  // LowRankCore, alpha = r: scaling 1
    core = 1.0 * torch::matmul(torch::matmul(xr, leaf.at("core.B")), leaf.at("core.A").t());
  }
  if (core.size(-1) < c.d_out) core = torch::cat({core, torch::zeros({x.size(0), x.size(1), c.d_out - m}, x.options())}, -1);
  torch::Tensor delta = c.sided == "right" ? core : PublicRotate(core, t.at("pairs_L"), leaf.at("theta_L"), true);
  torch::Tensor norms32 = t.at("base_row_norms").to(torch::kFloat32);
  torch::Tensor energy32 = t.at("total_energy").squeeze();
  if (c.magnitude != "none") {
    torch::Tensor scale = c.magnitude == "oer_softmax" ? PublicOerScale(norms32, energy32, leaf.at("ecd_log_mag"))
                                                       : PublicEcdScale(norms32, energy32, leaf.at("ecd_log_mag"));
    *scale_out = scale.detach();
    delta = delta * scale.to(delta.scalar_type()).view({1, 1, -1});
  }
  torch::Tensor y = torch::nn::functional::linear(x, w, b) + delta;
  (y * g).sum().backward();
  std::map<std::string, torch::Tensor> grads;
  for (const auto& [name, v] : leaf) {
    if (v.is_floating_point() && v.grad().defined()) grads[name] = v.grad();
  }
  return {y.detach(), grads};
}

TEST(JoraReferenceOrderTest, MatchesThePublicComputationOnShapesTheFilesDoNotCover) {
  std::vector<Case> cases;
  for (const auto& [d_out, d_in] : std::vector<std::pair<int64_t, int64_t>>{{48, 64}, {33, 70}, {96, 16}, {200, 300}}) {
    for (const std::string sided : {"left", "right", "none"}) {
      for (const std::string core : {"diag", "block", "lowrank"}) {
        for (const std::string magnitude : {"oer_softmax", "ecd_tanh", "none"}) {
          cases.push_back({d_out, d_in, sided, core, magnitude});
        }
      }
    }
  }
  torch::manual_seed(14);
  int guarded = 0;
  for (const Case& c : cases) {
    const int64_t s = 6, m = std::min(c.d_out, c.d_in);
    LinearShape shape;
    shape.name = "proj";
    shape.d_out = c.d_out;
    shape.d_in = c.d_in;
    shape.has_bias = true;
    torch::Tensor w = torch::randn({c.d_out, c.d_in}, torch::kFloat64) / std::sqrt(static_cast<double>(c.d_in));
    w[3].zero_();  // a dead output row: OER's min-norm guard stands in for its norm
    torch::Tensor b = torch::randn({c.d_out}, torch::kFloat64) * 0.1;
    std::map<std::string, torch::Tensor> t;
    t["pairs_L"] = torch::randperm(c.d_out, torch::kLong).narrow(0, 0, 2 * s).view({s, 2});
    t["pairs_R"] = torch::randperm(c.d_in, torch::kLong).narrow(0, 0, 2 * s).view({s, 2});
    t["num_pairs_L"] = torch::full({1}, s, torch::kLong);
    t["num_pairs_R"] = torch::full({1}, s, torch::kLong);
    t["base_row_norms"] = w.norm(2, 1);
    t["total_energy"] = t["base_row_norms"].to(torch::kFloat32).pow(2).sum().view({1});
    std::map<std::string, torch::Tensor> trainable;
    if (c.sided != "right") trainable["theta_L"] = torch::randn({s}, torch::kFloat64) * 0.3;
    if (c.sided != "left") trainable["theta_R"] = torch::randn({s}, torch::kFloat64) * 0.3;
    if (c.core == "diag") trainable["core.diag_params"] = torch::randn({m}, torch::kFloat64) * 0.3;
    if (c.core == "block") {
      trainable["core.blocks"] = torch::randn({m / 4, 4, 4}, torch::kFloat64) * 0.3;
      if (m % 4) trainable["core.diag_remainder"] = torch::randn({m % 4}, torch::kFloat64) * 0.3;
    }
    if (c.core == "lowrank") {
      trainable["core.A"] = torch::randn({c.d_out, 8}, torch::kFloat64) * 0.3;
      trainable["core.B"] = torch::randn({c.d_in, 8}, torch::kFloat64) * 0.3;
    }
    if (c.magnitude != "none") {
      trainable["ecd_log_mag"] = t["base_row_norms"].pow(2).clamp_min(kEps).log() + torch::randn({c.d_out}, torch::kFloat64) * 0.3;
    }
    for (const auto& [name, v] : trainable) t[name] = v;

    json settings = {{"method", "jora"}, {"S_L", s},           {"S_R", s},         {"k", 4},
                     {"core", c.core},   {"magnitude", c.magnitude}, {"single_sided", c.sided},
                     {"selection", "none"}, {"block_size", 4}, {"lowrank_r", 8}, {"init_weights", false}};
    std::shared_ptr<Adapter> ours = MakeAdapter(settings, w.clone(), b.clone(), shape);
    ours->train();
    for (const std::string& absent : ours->Load(t)) {  // EMAs and the unused support may be absent
      ASSERT_EQ(trainable.count(absent), 0u) << c.Name() << ": " << absent;
      for (const NamedTensor& nt : ours->Trainable()) ASSERT_NE(nt.name, absent) << c.Name();
    }
    torch::Tensor x = torch::randn({2, 3, c.d_in}, torch::kFloat64);
    torch::Tensor g = torch::randn({2, 3, c.d_out}, torch::kFloat64);
    torch::Tensor y = ours->Forward(x);
    (y * g).sum().backward();

    torch::Tensor scale;
    auto [y_ref, grads_ref] = PublicForward(c, w, b, t, x, g, &scale);
    // Row 3 has norm 0: only the guard keeps its OER scale finite (target / 0 otherwise).
    if (c.magnitude == "oer_softmax" && std::isfinite(scale[3].item<float>()) && scale[3].item<float>() > 0) ++guarded;
    // addcmul rounds b + δ·s once less than the public (δ·s) then + b: a few ulps of y.
    EXPECT_LT((y - y_ref).abs().max().item<double>(), 1e-12) << c.Name();
    for (const NamedTensor& nt : ours->Trainable()) {
      ASSERT_TRUE(grads_ref.count(nt.name)) << c.Name() << ": " << nt.name;
      ASSERT_TRUE(nt.tensor.grad().defined()) << c.Name() << ": " << nt.name;
      EXPECT_LT((nt.tensor.grad() - grads_ref.at(nt.name)).abs().max().item<double>(), 1e-12)
          << c.Name() << ": grad of " << nt.name;
    }
  }
  EXPECT_EQ(guarded, 4 * 3 * 3);  // every OER case went through the guard
}

}  // namespace
}  // namespace sweepd::adapters
