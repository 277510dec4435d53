// JORA's fixed-capacity pair slots (jora.cc) against the eager layer they replace
// (jora_eager_reference.cc: active pairs as a host-sized prefix), trained side by side step by
// step through several selection updates: the same losses, angles, cores, magnitudes, selected
// pairs and counts, while the slot tensors the forward reads keep their shapes and storage
// (what lets the step replay in one CUDA graph).
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/adapters/jora_eager_reference.h"
#include "worker/adapters/adapter.h"

namespace sweepd::adapters {
namespace {

using nlohmann::json;

struct SelectionCase {
  std::string name;
  json settings;
  int64_t d_out, d_in;
};

// The seed design's recipe (topk_ema, diag core, OER magnitude) scaled down so that a few steps
// cross several updates, with a warm-up ramp so that the active counts change between updates;
// then the other selections, pairings, cores and sides.
std::vector<SelectionCase> SelectionCases() {
  const json recipe = {{"method", "jora"}, {"S_L", 8}, {"S_R", 8}, {"k", 6}, {"core", "diag"},
                       {"magnitude", "oer_softmax"}, {"selection", "topk_ema"}, {"ema_beta", 0.95},
                       {"update_interval", 3}, {"warmup_steps", 6}};
  std::vector<SelectionCase> cases;
  cases.push_back({"recipe", recipe, 40, 56});
  json none = recipe;
  none["selection"] = "none";
  cases.push_back({"selection none", none, 40, 56});
  json random = recipe;
  random["selection"] = "random";
  cases.push_back({"selection random", random, 56, 40});
  json high_low = recipe;
  high_low["pairing_strategy"] = "high_low";
  high_low["use_gumbel"] = true;
  high_low["magnitude"] = "ecd_tanh";
  high_low["warmup_steps"] = 0;
  cases.push_back({"high_low gumbel ecd", high_low, 33, 70});
  json selective = recipe;
  selective["core"] = "selective_diag";
  selective["S_L"] = 5;
  selective["S_R"] = 7;
  cases.push_back({"selective_diag", selective, 48, 48});
  json block_right = recipe;
  block_right["core"] = "block";
  block_right["block_size"] = 4;
  block_right["single_sided"] = "right";
  block_right["magnitude"] = "none";
  cases.push_back({"block right-only", block_right, 30, 44});
  json crowded = recipe;  // S = d_out/2: every output feature in a slot, no spare feature
  crowded["S_L"] = 9;
  crowded["k"] = 10;
  crowded["core"] = "lowrank";
  crowded["lowrank_r"] = 3;
  cases.push_back({"lowrank S = d_out/2", crowded, 18, 64});
  return cases;
}

std::map<std::string, torch::Tensor> JoraStateOf(Adapter& a) {
  std::map<std::string, torch::Tensor> m;
  for (const NamedTensor& nt : a.State()) m[nt.name] = nt.tensor;
  return m;
}

std::map<std::string, torch::Tensor> JoraSlotBuffers(Adapter& a) {
  std::map<std::string, torch::Tensor> m;
  for (const auto& item : a.named_buffers()) {
    const std::string& n = item.key();
    if (n.rfind("slots_", 0) == 0 || n.rfind("live_", 0) == 0 || n.rfind("support_", 0) == 0) m[n] = item.value();
  }
  return m;
}

double JoraMaxDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

struct SelectionTolerance {
  double values;  // losses, trainable tensors and their gradients (absolute)
  double ema;     // the selection's energies (relative to the largest)
  double merge;   // merged against unmerged forward
};

void TrainJoraSideBySide(const SelectionCase& c, torch::ScalarType dtype, const SelectionTolerance& tolerance) {
  SCOPED_TRACE(c.name + " " + std::string(c10::toString(dtype)));
  const double tol = tolerance.values;
  LinearShape shape;
  shape.name = "proj";
  shape.d_out = c.d_out;
  shape.d_in = c.d_in;
  shape.has_bias = true;
  torch::manual_seed(21);
  auto opts = torch::TensorOptions().dtype(dtype);
  torch::Tensor w = torch::randn({c.d_out, c.d_in}, opts) / std::sqrt(static_cast<double>(c.d_in));
  torch::Tensor b = torch::randn({c.d_out}, opts) * 0.1;
  // The same seed before each constructor: both draw their angles, cores and initial pairs alike.
  torch::manual_seed(5);
  std::shared_ptr<Adapter> ours = MakeAdapter(c.settings, w.clone(), b.clone(), shape);
  torch::manual_seed(5);
  std::shared_ptr<Adapter> ref = MakeEagerJoraReference(c.settings, w.clone(), b.clone(), shape);
  ASSERT_TRUE(ours->CudaGraphSafe());
  ours->train();
  ref->train();

  auto params = [](Adapter& a) {
    std::vector<torch::Tensor> p;
    for (const NamedTensor& nt : a.Trainable()) p.push_back(nt.tensor);
    return p;
  };
  torch::optim::Adam opt_ours(params(*ours), torch::optim::AdamOptions(2e-2));
  torch::optim::Adam opt_ref(params(*ref), torch::optim::AdamOptions(2e-2));

  const std::map<std::string, torch::Tensor> slots_at_start = JoraSlotBuffers(*ours);
  ASSERT_FALSE(slots_at_start.empty());
  const torch::Tensor pairs_at_start = JoraStateOf(*ours).at("pairs_R").clone();
  const int64_t steps = 10, total = 20;  // updates after steps 3, 6 and 9
  int updates_that_moved_pairs = 0;
  for (int64_t step = 1; step <= steps; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    // A 3-D batch, and a loss that is not linear in y (the output gradient feeds the row EMA).
    torch::Tensor x = torch::randn({2, 5, c.d_in}, opts);
    torch::Tensor t = torch::randn({2, 5, c.d_out}, opts);
    std::vector<torch::Tensor> losses;
    for (auto [a, opt] : {std::pair{ours, &opt_ours}, std::pair{ref, &opt_ref}}) {
      opt->zero_grad();
      torch::Tensor loss = (a->Forward(x) - t).pow(2).mean();
      loss.backward();
      opt->step();
      losses.push_back(loss.detach());
    }
    EXPECT_LE(JoraMaxDiff(losses[0], losses[1]), tol * std::max(1.0, losses[1].abs().item<double>()));
    const torch::Tensor before = JoraStateOf(*ref).at("pairs_R").clone();
    // The same random stream for both selections (random pairs, Gumbel noise).
    torch::manual_seed(100 + step);
    ours->AfterOptimizerStep(step, total);
    torch::manual_seed(100 + step);
    ref->AfterOptimizerStep(step, total);
    if (!torch::equal(before, JoraStateOf(*ref).at("pairs_R"))) ++updates_that_moved_pairs;

    for (const NamedTensor& nt : ref->Trainable()) {
      bool found = false;
      for (const NamedTensor& o : ours->Trainable()) {
        if (o.name != nt.name) continue;
        found = true;
        EXPECT_LE(JoraMaxDiff(o.tensor, nt.tensor), tol) << nt.name;
        ASSERT_EQ(o.tensor.grad().defined(), nt.tensor.grad().defined()) << nt.name;
        if (nt.tensor.grad().defined()) {
          EXPECT_LE(JoraMaxDiff(o.tensor.grad(), nt.tensor.grad()), tol) << "grad of " << nt.name;
        }
      }
      EXPECT_TRUE(found) << nt.name;
    }
    const std::map<std::string, torch::Tensor> got = JoraStateOf(*ours), want = JoraStateOf(*ref);
    for (const char* name : {"pairs_L", "pairs_R", "num_pairs_L", "num_pairs_R", "core.support_indices",
                             "core.active_support_size"}) {
      EXPECT_TRUE(torch::equal(got.at(name), want.at(name))) << name << "\nours " << got.at(name) << "\nref "
                                                              << want.at(name);
    }
    for (const char* name : {"grad_row_ema", "grad_col_ema"}) {
      EXPECT_LE(JoraMaxDiff(got.at(name), want.at(name)),
                tolerance.ema * std::max(1e-30, want.at(name).abs().max().item<double>()))
          << name;
    }
    // The slot tensors keep their shapes and their storage: updates write into them in place.
    for (const auto& [name, now] : JoraSlotBuffers(*ours)) {
      EXPECT_EQ(now.sizes(), slots_at_start.at(name).sizes()) << name;
      EXPECT_EQ(now.data_ptr(), slots_at_start.at(name).data_ptr()) << name;
    }
    for (const char* side : {"slots_L", "slots_R"}) {  // distinct features, so one scatter is exact
      torch::Tensor s = std::get<0>(torch::sort(JoraSlotBuffers(*ours).at(side)));
      if (s.numel() > 1) {
        EXPECT_TRUE((s.narrow(0, 1, s.numel() - 1) != s.narrow(0, 0, s.numel() - 1)).all().item<bool>()) << side << " " << s;
      }
    }
  }
  if (c.settings.at("selection") == "none") {
    EXPECT_TRUE(torch::equal(JoraStateOf(*ours).at("pairs_R"), pairs_at_start));
  } else {
    EXPECT_GE(updates_that_moved_pairs, 2) << "the selection must change the pairs for this test to mean anything";
  }
  // The merged weight reproduces the forward pass (the slots are a linear map like the pairs).
  ours->eval();
  torch::Tensor x = torch::randn({4, c.d_in}, opts);
  torch::Tensor y = ours->Forward(x);
  ours->Merge();
  EXPECT_LE(JoraMaxDiff(ours->Forward(x), y), tolerance.merge);
}

TEST(JoraSelectionTest, FixedSlotsTrainLikeTheEagerPairsInFloat64) {
  for (const SelectionCase& c : SelectionCases()) TrainJoraSideBySide(c, torch::kFloat64, {1e-12, 1e-12, 1e-12});
}

TEST(JoraSelectionTest, FixedSlotsTrainLikeTheEagerPairsInFloat32) {
  for (const SelectionCase& c : SelectionCases()) TrainJoraSideBySide(c, torch::kFloat32, {2e-6, 1e-6, 1e-5});
}

// bfloat16 activations take the one-pass energy reduction (float32 rounding away from the
// float32 copy, square and mean): the energies agree to float32 precision and the pairs chosen
// from them are the same.
TEST(JoraSelectionTest, FixedSlotsSelectTheSamePairsInBfloat16) {
  for (const SelectionCase& c : SelectionCases()) TrainJoraSideBySide(c, torch::kBFloat16, {2e-2, 1e-5, 5e-2});
}

// A checkpoint of the eager layer (pairs with −1 beyond the count) loads into the slots and
// computes the same forward pass; and the other way round.
TEST(JoraSelectionTest, CheckpointsLoadBothWays) {
  for (const SelectionCase& c : SelectionCases()) {
    SCOPED_TRACE(c.name);
    LinearShape shape;
    shape.name = "proj";
    shape.d_out = c.d_out;
    shape.d_in = c.d_in;
    torch::manual_seed(3);
    torch::Tensor w = torch::randn({c.d_out, c.d_in}, torch::kFloat64);
    std::shared_ptr<Adapter> ref = MakeEagerJoraReference(c.settings, w.clone(), torch::Tensor(), shape);
    ref->train();
    for (int64_t step = 1; step <= 4; ++step) {  // one update, after step 3
      ref->Forward(torch::randn({6, c.d_in}, torch::kFloat64)).pow(2).sum().backward();
      torch::manual_seed(step);
      ref->AfterOptimizerStep(step, 20);
    }
    json loaded = c.settings;
    loaded["init_weights"] = false;
    std::shared_ptr<Adapter> ours = MakeAdapter(loaded, w.clone(), torch::Tensor(), shape);
    EXPECT_TRUE(ours->Load(ref->Save()).empty());
    std::shared_ptr<Adapter> back = MakeEagerJoraReference(loaded, w.clone(), torch::Tensor(), shape);
    EXPECT_TRUE(back->Load(ours->Save()).empty());
    ref->eval();
    ours->eval();
    back->eval();
    torch::Tensor x = torch::randn({3, c.d_in}, torch::kFloat64);
    EXPECT_LE(JoraMaxDiff(ours->Forward(x), ref->Forward(x)), 1e-12);
    EXPECT_LE(JoraMaxDiff(back->Forward(x), ref->Forward(x)), 1e-12);
  }
}

}  // namespace
}  // namespace sweepd::adapters
