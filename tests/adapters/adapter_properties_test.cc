// Properties every adapter must have, for every method: merge then forward equals the
// unmerged forward (float64, 1e-9), unmerge restores W exactly, closed-form counts equal the
// counted tensor sizes over a grid of shapes and settings, save/load round-trips.
#include <gtest/gtest.h>

#include "worker/adapters/adapter.h"

namespace sweepd::adapters {
namespace {

using nlohmann::json;

LinearShape MakeShape(int64_t d_out, int64_t d_in) {
  LinearShape s;
  s.name = "layer";
  s.d_out = d_out;
  s.d_in = d_in;
  s.has_bias = true;
  return s;
}

std::vector<json> AllMethodSettings() {
  return {
      {{"method", "lora"}, {"r", 4}, {"alpha", 8}},
      {{"method", "rslora"}, {"r", 4}, {"alpha", 8}},
      {{"method", "lora_plus"}, {"r", 4}, {"alpha", 8}, {"lr_ratio", 8}},
      {{"method", "dora"}, {"r", 4}, {"alpha", 8}},
      {{"method", "dora"}, {"r", 4}, {"alpha", 8}, {"dora_impl", "column_norm"}},
      {{"method", "pre_diag"}, {"r", 4}, {"alpha", 8}},
      {{"method", "sora"}, {"r", 4}, {"alpha", 8}, {"r_p", 2}},
      {{"method", "sora"}, {"r", 4}, {"alpha", 8}, {"r_p", 2}, {"rotation", "exact"}},
      {{"method", "oft"}, {"oft_block_size", 8}},
      {{"method", "oft"}, {"oft_block_size", 16}, {"coft", true}, {"eps", 1e-2}},
      {{"method", "oft"}, {"oft_block_size", 8}, {"use_cayley_neumann", true}},
      {{"method", "boft"}, {"boft_block_size", 4}, {"boft_n_butterfly_factor", 1}},
      {{"method", "boft"}, {"boft_block_size", 4}, {"boft_n_butterfly_factor", 2}},
      {{"method", "boft"}, {"boft_block_size", 2}, {"boft_n_butterfly_factor", 3}},
      {{"method", "ia3"}},
      {{"method", "ia3"}, {"feedforward", true}},
      {{"method", "adalora"}, {"init_r", 6}, {"lora_alpha", 12}},
      {{"method", "sorsa"}, {"r", 4}},
      {{"method", "sorsa"}, {"r", 4}, {"alpha", 16}},
      {{"method", "jora"}, {"S_L", 4}, {"S_R", 4}, {"core", "diag"}, {"magnitude", "none"}},
      {{"method", "jora"}, {"S_L", 4}, {"S_R", 6}, {"core", "diag"}, {"magnitude", "oer_softmax"},
       {"rotation_param", "angle"}},
      {{"method", "jora"}, {"S_L", 4}, {"S_R", 4}, {"core", "block"}, {"block_size", 5}, {"magnitude", "ecd_tanh"}},
      {{"method", "jora"}, {"S_L", 4}, {"S_R", 4}, {"core", "lowrank"}, {"lowrank_r", 3},
       {"magnitude", "oer_softmax"}, {"magnitude_scope", "output"}},
      {{"method", "jora"}, {"S_L", 3}, {"S_R", 3}, {"core", "diag"}, {"single_sided", "left"}},
      {{"method", "jora"}, {"S_L", 3}, {"S_R", 3}, {"core", "diag"}, {"single_sided", "right"},
       {"magnitude", "none"}},
  };
}

// Moves every trainable tensor off its init so that no adapter is the identity.
void Perturb(Adapter& a) {
  torch::NoGradGuard no_grad;
  for (NamedTensor& nt : a.Trainable()) {
    if (nt.tensor.is_floating_point()) nt.tensor.add_(torch::randn_like(nt.tensor) * 0.1);
  }
}

std::shared_ptr<Adapter> Build(const json& settings, const LinearShape& shape) {
  torch::Tensor w = torch::randn({shape.d_out, shape.d_in}, torch::kFloat64) / std::sqrt(double(shape.d_in));
  torch::Tensor b = torch::randn({shape.d_out}, torch::kFloat64);
  return MakeAdapter(settings, w, b, shape);
}

TEST(AdapterPropertiesTest, MergeThenForwardEqualsUnmergedForward) {
  torch::manual_seed(1);
  std::vector<json> all = AllMethodSettings();
  all.push_back({{"method", "jora"}, {"S_L", 4}, {"S_R", 4}, {"k", 3}, {"core", "selective_diag"}});
  for (const json& s0 : all) {
    json s = s0;
    const bool square = s.value("core", "") == "selective_diag";
    const LinearShape shape = square ? MakeShape(48, 48) : MakeShape(64, 48);
    torch::Tensor w_orig = torch::randn({shape.d_out, shape.d_in}, torch::kFloat64) / std::sqrt(48.0);
    auto a = MakeAdapter(s, w_orig.clone(), torch::randn({shape.d_out}, torch::kFloat64), shape);
    Perturb(*a);
    torch::Tensor x = torch::randn({7, 48}, torch::kFloat64);
    torch::Tensor y = a->Forward(x).detach();
    torch::Tensor w0 = a->BaseWeight().clone();
    a->Merge();
    ASSERT_TRUE(a->Merged());
    EXPECT_LT((a->Forward(x) - y).abs().max().item<double>(), 1e-9) << s.dump();
    a->Unmerge();
    EXPECT_EQ((a->BaseWeight() - w0).abs().max().item<double>(), 0.0) << s.dump();
    EXPECT_LT((a->Forward(x).detach() - y).abs().max().item<double>(), 1e-12) << s.dump();
    // ΔW = W_eff − W_0, W_0 the weight the layer had before the adapter.
    torch::Tensor dw = a->DeltaWeight();
    EXPECT_LT((a->EffectiveWeight() - dw - w_orig).abs().max().item<double>(), 1e-12) << s.dump();
    torch::Tensor via_delta = torch::nn::functional::linear(x, w_orig + dw, a->EffectiveBias());
    EXPECT_LT((via_delta - y).abs().max().item<double>(), 1e-9) << s.dump();
  }
}

TEST(AdapterPropertiesTest, CountsEqualTensorSizesOverAGrid) {
  for (const auto& [d_out, d_in] : std::vector<std::pair<int64_t, int64_t>>{{64, 48}, {48, 64}, {32, 32}, {96, 16}}) {
    std::vector<json> grid = AllMethodSettings();
    if (d_out == d_in) {
      grid.push_back({{"method", "jora"}, {"S_L", 4}, {"S_R", 4}, {"k", 3}, {"core", "selective_diag"}});
    }
    for (const json& s : grid) {
      LinearShape shape = MakeShape(d_out, d_in);
      auto a = Build(s, shape);
      int64_t sum = 0;
      for (const NamedTensor& nt : a->Trainable()) sum += nt.tensor.numel();
      EXPECT_EQ(a->ParameterCount(), sum) << s.dump() << " " << d_out << "x" << d_in;
      Result<int64_t> closed = CountTrainableParameters(s, shape);
      ASSERT_TRUE(closed.ok()) << closed.status().message();
      EXPECT_EQ(*closed, sum) << s.dump() << " " << d_out << "x" << d_in;
    }
  }
}

TEST(AdapterPropertiesTest, SaveLoadRoundTrips) {
  torch::manual_seed(2);
  for (const json& s : AllMethodSettings()) {
    const LinearShape shape = MakeShape(64, 48);
    torch::Tensor w = torch::randn({64, 48}, torch::kFloat64), bias = torch::randn({64}, torch::kFloat64);
    auto a = MakeAdapter(s, w.clone(), bias.clone(), shape);
    Perturb(*a);
    torch::Tensor x = torch::randn({3, 48}, torch::kFloat64);
    torch::Tensor y = a->Forward(x).detach();
    json s2 = s;
    s2["init_weights"] = false;
    // The frozen weight the adapter computes with (SORSA: the residual) and the original bias.
    auto b = MakeAdapter(s2, a->BaseWeight().clone(), bias.clone(), shape);
    EXPECT_TRUE(b->Load(a->Save()).empty()) << s.dump();
    EXPECT_LT((b->Forward(x) - y).abs().max().item<double>(), 1e-12) << s.dump();
  }
}

// Training runs in bfloat16: every method's forward and backward work there (rotations are
// built in float32 inside) and give finite gradients.
TEST(AdapterPropertiesTest, EveryMethodTrainsInBfloat16) {
  torch::manual_seed(9);
  for (const json& s : AllMethodSettings()) {
    const LinearShape shape = MakeShape(64, 48);
    auto a = MakeAdapter(s, torch::randn({64, 48}).to(torch::kBFloat16), torch::randn({64}).to(torch::kBFloat16),
                         shape);
    torch::Tensor y = a->Forward(torch::randn({4, 48}).to(torch::kBFloat16));
    EXPECT_EQ(y.scalar_type(), torch::kBFloat16) << s.dump();
    y.to(torch::kFloat32).pow(2).sum().backward();
    for (const NamedTensor& nt : a->Trainable()) {
      if (!nt.tensor.grad().defined()) continue;
      EXPECT_TRUE(torch::isfinite(nt.tensor.grad().to(torch::kFloat32)).all().item<bool>()) << s.dump() << nt.name;
    }
  }
}

TEST(AdapterPropertiesTest, DoraFormsAgree) {
  torch::manual_seed(3);
  json s = {{"method", "dora"}, {"r", 4}};
  torch::Tensor w = torch::randn({64, 48}, torch::kFloat64);
  auto a = MakeAdapter(s, w.clone(), torch::Tensor(), MakeShape(64, 48));
  Perturb(*a);
  s["dora_impl"] = "column_norm";
  s["init_weights"] = false;
  auto b = MakeAdapter(s, w.clone(), torch::Tensor(), MakeShape(64, 48));
  b->Load(a->Save());
  torch::Tensor x = torch::randn({5, 48}, torch::kFloat64);
  torch::Tensor ya = a->Forward(x), yb = b->Forward(x);
  EXPECT_LT((ya - yb).abs().max().item<double>(), 1e-12);
  ya.sum().backward();
  yb.sum().backward();
  auto ta = a->Trainable(), tb = b->Trainable();
  for (size_t i = 0; i < ta.size(); ++i) {
    EXPECT_LT((ta[i].tensor.grad() - tb[i].tensor.grad()).abs().max().item<double>(), 1e-10) << ta[i].name;
  }
}

// 100 Adam steps in float32 on a random regression; the rotations must stay orthogonal.
TEST(AdapterPropertiesTest, RotationsStayOrthogonalAfterTraining) {
  torch::manual_seed(4);
  for (const json& s : std::vector<json>{{{"method", "oft"}, {"oft_block_size", 8}},
                                         {{"method", "oft"}, {"oft_block_size", 16}, {"coft", true}},
                                         {{"method", "boft"}, {"boft_block_size", 4}, {"boft_n_butterfly_factor", 2}},
                                         {{"method", "jora"}, {"S_L", 8}, {"S_R", 8}, {"k", 4}, {"core", "block"},
                                          {"selection", "topk_ema"}, {"magnitude", "oer_softmax"}},
                                         {{"method", "jora"}, {"S_L", 8}, {"S_R", 8}, {"rotation_param", "angle"},
                                          {"selection", "random"}}}) {
    LinearShape shape = MakeShape(64, 48);
    auto a = MakeAdapter(s, torch::randn({64, 48}) / 7.0, torch::randn({64}), shape);
    a->train();
    std::vector<torch::Tensor> params;
    for (const NamedTensor& nt : a->Trainable()) params.push_back(nt.tensor);
    torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-2));
    torch::Tensor target = torch::randn({48, 64});
    for (int step = 1; step <= 100; ++step) {
      torch::Tensor x = torch::randn({16, 48});
      torch::Tensor loss = (a->Forward(x) - torch::matmul(x, target)).pow(2).mean();
      opt.zero_grad();
      loss.backward();
      opt.step();
      a->AfterOptimizerStep(step, 100);
    }
    auto diag = a->Diagnostics();
    ASSERT_TRUE(diag.count("orthogonality_error")) << s.dump();
    EXPECT_LE(diag["orthogonality_error"], 1e-5) << s.dump();
    if (diag.count("oer_energy_error")) {
      EXPECT_LE(diag["oer_energy_error"], 1e-5) << s.dump();
    }
  }
}

// Theorem 2 of the SORA paper: ‖exp(s_pK) − (I + s_pK)‖ ≤ e^{‖s_pK‖} − 1 − ‖s_pK‖; the reported
// error (computed without a d_out×d_out matrix) must also equal the dense one.
TEST(AdapterPropertiesTest, SoraTaylorErrorObeysTheoremTwo) {
  torch::manual_seed(5);
  for (double magnitude : {0.01, 0.1, 1.0, 3.0}) {
    json s = {{"method", "sora"}, {"r", 4}, {"r_p", 3}, {"initial_s_p", 1.0}};
    auto a = Build(s, MakeShape(40, 24));
    torch::Tensor c, d;
    {
      torch::NoGradGuard no_grad;
      for (NamedTensor& nt : a->Trainable()) {
        if (nt.name == "lora_C.weight") c = nt.tensor.copy_(torch::randn_like(nt.tensor) * magnitude);
        if (nt.name == "lora_D.weight") d = nt.tensor.copy_(torch::randn_like(nt.tensor) * magnitude);
      }
    }
    auto diag = a->Diagnostics();
    const double sp = diag["sora_s_p"];
    torch::Tensor k = (torch::matmul(c, d.t()) - torch::matmul(d, c.t())).detach() * sp;
    torch::Tensor eye = torch::eye(40, torch::kFloat64);
    const double dense = (torch::matrix_exp(k) - eye - k).norm().item<double>();
    EXPECT_NEAR(diag["sora_taylor_error"], dense, 1e-10 + 1e-8 * dense) << magnitude;
    EXPECT_NEAR(diag["sora_skew_norm"], k.norm().item<double>(), 1e-10);
    EXPECT_LE(diag["sora_taylor_error"], diag["sora_taylor_bound"] + 1e-15) << magnitude;
  }
}

// The exact rotation's forward equals R·exp(s_pK) built densely.
TEST(AdapterPropertiesTest, SoraExactRotationMatchesMatrixExp) {
  torch::manual_seed(6);
  json s = {{"method", "sora"}, {"r", 4}, {"r_p", 2}, {"rotation", "exact"}};
  torch::Tensor w = torch::randn({32, 16}, torch::kFloat64);
  auto a = MakeAdapter(s, w.clone(), torch::Tensor(), MakeShape(32, 16));
  Perturb(*a);
  torch::Tensor c, d, diag;
  for (NamedTensor& nt : a->Trainable()) {
    if (nt.name == "lora_C.weight") c = nt.tensor.detach();
    if (nt.name == "lora_D.weight") d = nt.tensor.detach();
  }
  s["rotation"] = "taylor";
  s["init_weights"] = false;
  auto taylor = MakeAdapter(s, w.clone(), torch::Tensor(), MakeShape(32, 16));
  taylor->Load(a->Save());
  const double sp = a->Diagnostics()["sora_s_p"];
  torch::Tensor k = (torch::matmul(c, d.t()) - torch::matmul(d, c.t())) * sp;
  torch::Tensor x = torch::randn({5, 16}, torch::kFloat64);
  // R = taylor output with K removed: R (I + K) = y_taylor ⇒ R = y_taylor (I + K)⁻¹.
  torch::Tensor eye = torch::eye(32, torch::kFloat64);
  torch::Tensor r = torch::linalg_solve((eye + k).t(), taylor->Forward(x).detach().t()).t();
  torch::Tensor expected = torch::matmul(r, torch::matrix_exp(k));
  EXPECT_LT((a->Forward(x).detach() - expected).abs().max().item<double>(), 1e-10);
}

// SORA's Taylor rotation runs as one autograd node with a hand-written backward: its output and
// every gradient (A, B, Diag, C, D; through s_p too) equal autograd over the plain expression
// R + s_p (R C Dᵀ − R D Cᵀ), s_p = min(1, a / (‖C‖ + ‖D‖ + 1e-6)), with R = Pre-Diag's output,
// when s_p is clamped at 1 (small C, D) and when it is not (large C, D).
TEST(AdapterPropertiesTest, SoraTaylorGradientsEqualAutogradOfThePlainExpression) {
  torch::manual_seed(8);
  for (double magnitude : {0.01, 2.0}) {
    const double initial_s_p = 0.7;
    json s = {{"method", "sora"}, {"r", 4}, {"r_p", 3}, {"initial_s_p", initial_s_p}};
    torch::Tensor w = torch::randn({40, 24}, torch::kFloat64) / 5.0, bias = torch::randn({40}, torch::kFloat64);
    auto sora = MakeAdapter(s, w.clone(), bias.clone(), MakeShape(40, 24));
    auto pre = MakeAdapter({{"method", "pre_diag"}, {"r", 4}}, w.clone(), bias.clone(), MakeShape(40, 24));
    Perturb(*sora);
    torch::Tensor c, d;
    {
      torch::NoGradGuard no_grad;
      for (NamedTensor& nt : sora->Trainable()) {
        if (nt.name == "lora_C.weight") nt.tensor.copy_(torch::randn_like(nt.tensor) * magnitude);
        if (nt.name == "lora_D.weight") nt.tensor.copy_(torch::randn_like(nt.tensor) * magnitude);
        if (nt.name == "lora_C.weight") c = nt.tensor.detach().clone().requires_grad_();
        if (nt.name == "lora_D.weight") d = nt.tensor.detach().clone().requires_grad_();
        for (NamedTensor& other : pre->Trainable()) {
          if (other.name == nt.name) other.tensor.copy_(nt.tensor);
        }
      }
    }
    torch::Tensor x = torch::randn({3, 5, 24}, torch::kFloat64);
    torch::Tensor upstream = torch::randn({3, 5, 40}, torch::kFloat64);
    torch::Tensor y = sora->Forward(x);
    (y * upstream).sum().backward();

    torch::Tensor r = pre->Forward(x);
    torch::Tensor raw = initial_s_p / (c.norm() + d.norm() + 1e-6);
    torch::Tensor sp = torch::clamp_max(raw, 1.0);
    EXPECT_EQ(raw.item<double>() > 1.0, magnitude < 1.0) << "the two cases must cover both sides of the clamp";
    torch::Tensor expected = r + sp * (torch::matmul(torch::matmul(r, c), d.t()) - torch::matmul(torch::matmul(r, d), c.t()));
    (expected * upstream).sum().backward();

    EXPECT_LT((y - expected).abs().max().item<double>(), 1e-12) << magnitude;
    for (NamedTensor& nt : sora->Trainable()) {
      torch::Tensor want;
      if (nt.name == "lora_C.weight") want = c.grad();
      if (nt.name == "lora_D.weight") want = d.grad();
      for (NamedTensor& other : pre->Trainable()) {
        if (other.name == nt.name) want = other.tensor.grad();
      }
      ASSERT_TRUE(want.defined() && nt.tensor.grad().defined()) << nt.name;
      EXPECT_LT((nt.tensor.grad() - want).abs().max().item<double>(), 1e-10) << nt.name << " " << magnitude;
    }
  }
}

TEST(AdapterPropertiesTest, SoraRefusesANonPositiveInitialSp) {
  LinearShape shape;
  shape.d_out = 8;
  shape.d_in = 8;
  for (double a : {0.0, -0.5}) {
    json s = {{"method", "sora"}, {"r", 2}, {"r_p", 2}, {"initial_s_p", a}};
    try {
      MakeAdapter(s, torch::randn({8, 8}, torch::kFloat64), torch::Tensor(), shape);
      ADD_FAILURE() << "initial_s_p " << a << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("initial_s_p"), std::string::npos) << e.what();
    }
  }
}

TEST(AdapterPropertiesTest, JoraTopkSelectionFollowsActivationEnergy) {
  torch::manual_seed(7);
  json s = {{"method", "jora"}, {"S_L", 2}, {"S_R", 2}, {"k", 4}, {"selection", "topk_ema"}, {"ema_beta", 0.5},
            {"core", "diag"}, {"magnitude", "none"}};
  auto a = Build(s, MakeShape(64, 48));
  a->train();
  torch::Tensor scale = torch::ones({48}, torch::kFloat64);
  scale.index_put_({torch::tensor({3, 17, 29, 40})}, 100.0);
  for (int step = 1; step <= 5; ++step) {
    torch::Tensor x = torch::randn({32, 48}, torch::kFloat64) * scale;
    a->Forward(x).sum().backward();
    a->AfterOptimizerStep(step, 10);
  }
  torch::Tensor pairs;
  for (const NamedTensor& nt : a->State()) {
    if (nt.name == "pairs_R") pairs = nt.tensor;
  }
  auto chosen = std::get<0>(torch::sort(pairs.reshape({-1})));
  EXPECT_TRUE(torch::equal(chosen, torch::tensor({3, 17, 29, 40}, torch::kLong))) << pairs;
  // Checkpointed state reproduces the forward pass exactly.
  s["init_weights"] = false;
  auto b = MakeAdapter(s, a->BaseWeight().clone(), a->EffectiveBias().clone(), a->Shape());
  EXPECT_TRUE(b->Load(a->Save()).empty());
  torch::Tensor x = torch::randn({4, 48}, torch::kFloat64);
  a->eval();
  b->eval();
  EXPECT_LT((a->Forward(x) - b->Forward(x)).abs().max().item<double>(), 1e-14);
}

TEST(AdapterPropertiesTest, AdaloraMasksToTargetRank) {
  torch::manual_seed(8);
  json s = {{"method", "adalora"}, {"init_r", 8}, {"target_r", 3}, {"tinit", 2}, {"tfinal", 3}, {"deltaT", 1}};
  auto a = Build(s, MakeShape(32, 24));
  a->train();
  std::vector<torch::Tensor> params;
  torch::Tensor e;
  for (const NamedTensor& nt : a->Trainable()) {
    params.push_back(nt.tensor);
    if (nt.name == "lora_E") e = nt.tensor;
  }
  torch::optim::SGD opt(params, torch::optim::SGDOptions(1e-2));
  for (int step = 1; step <= 20; ++step) {
    torch::Tensor x = torch::randn({8, 24}, torch::kFloat64);
    torch::Tensor loss = a->Forward(x).pow(2).mean() + a->RegularizationLoss();
    opt.zero_grad();
    loss.backward();
    opt.step();
    a->AfterOptimizerStep(step, 20);
  }
  EXPECT_EQ((e != 0).sum().item<int64_t>(), 3);
}

}  // namespace
}  // namespace sweepd::adapters
