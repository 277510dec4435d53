// The pieces a CUDA-graph training step rests on that run anywhere: AdamW's keep-gradients
// mode (the same gradient tensors every step, zeroed in place), GraphedPass off CUDA, the
// switch that turns graphs off, and which methods say they may be captured.
#include "worker/trainer/cuda_graph.h"

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "worker/adapters/adapter.h"
#include "worker/trainer/adamw.h"

namespace sweepd::trainer {
namespace {

// A toy loss over two params, the same for every optimizer it is given to.
torch::Tensor Loss(const torch::Tensor& p, const torch::Tensor& q, int step) {
  return (p * (step + 1)).sin().sum() + (q - 0.5 * step).pow(2).sum();
}

TEST(AdamWKeepGradients, ZeroGradZeroesTheSameTensorsInPlace) {
  torch::manual_seed(0);
  torch::Tensor p = torch::randn({3, 4}).requires_grad_();
  torch::Tensor q = torch::randn({5}).requires_grad_();
  AdamW opt;
  opt.Add("p", p, 0);
  opt.Add("q", q, 0);
  opt.KeepGradients(true);
  opt.ZeroGrad();  // no gradient yet: zero tensors appear
  ASSERT_TRUE(p.grad().defined());
  ASSERT_TRUE(q.grad().defined());
  EXPECT_EQ(p.grad().abs().sum().item<double>(), 0.0);
  void* p_grad = p.grad().data_ptr();
  void* q_grad = q.grad().data_ptr();
  Loss(p, q, 0).backward();
  EXPECT_EQ(p.grad().data_ptr(), p_grad) << "the backward must accumulate into the kept tensor";
  EXPECT_TRUE(torch::allclose(p.grad(), p.cos()));
  opt.Step(1.0);
  opt.ZeroGrad();
  EXPECT_EQ(p.grad().data_ptr(), p_grad);
  EXPECT_EQ(q.grad().data_ptr(), q_grad);
  EXPECT_EQ(p.grad().abs().sum().item<double>(), 0.0);
  EXPECT_EQ(q.grad().abs().sum().item<double>(), 0.0);
}

TEST(AdamWKeepGradients, StepsExactlyLikeDroppingTheGradients) {
  torch::manual_seed(1);
  torch::Tensor p0 = torch::randn({4, 3}), q0 = torch::randn({6});
  torch::Tensor p_keep = p0.clone().requires_grad_(), q_keep = q0.clone().requires_grad_();
  torch::Tensor p_drop = p0.clone().requires_grad_(), q_drop = q0.clone().requires_grad_();
  AdamW keep, drop;
  keep.SetGroup(0, {0.05, 0.01});
  drop.SetGroup(0, {0.05, 0.01});
  keep.Add("p", p_keep, 0);
  keep.Add("q", q_keep, 0);
  drop.Add("p", p_drop, 0);
  drop.Add("q", q_drop, 0);
  keep.KeepGradients(true);
  for (int step = 0; step < 4; ++step) {
    keep.ZeroGrad();
    drop.ZeroGrad();
    if (step == 0) {
      ASSERT_FALSE(p_drop.grad().defined());
    }
    Loss(p_keep, q_keep, step).backward();
    Loss(p_drop, q_drop, step).backward();
    keep.Step(1.0);
    drop.Step(1.0);
  }
  EXPECT_TRUE(torch::equal(p_keep, p_drop));
  EXPECT_TRUE(torch::equal(q_keep, q_drop));
  EXPECT_FALSE(torch::equal(p_keep, p0)) << "the optimizer must have moved the params";
  for (const auto& [name, t] : keep.State()) EXPECT_TRUE(torch::equal(t, drop.State().at(name))) << name;
}

TEST(GraphedPass, RunsThePassEagerlyEveryTimeOffCuda) {
  int calls = 0;
  GraphedPass pass(torch::Device("cpu"), [&] { return torch::full({}, static_cast<double>(++calls)); });
  for (int i = 1; i <= 4; ++i) EXPECT_EQ(pass.Run().item<double>(), i);
  EXPECT_EQ(calls, 4);
  EXPECT_FALSE(pass.Captured());
  pass.Release();
  EXPECT_EQ(pass.Run().item<double>(), 5);
}

TEST(GraphedPass, UsedOnlyOnCudaWithSafeAdaptersAndNotWhenSwitchedOff) {
  const torch::Device cuda("cuda"), cpu("cpu");
  unsetenv("SWEEP_TRAIN_CUDA_GRAPHS");
  EXPECT_FALSE(UseCudaGraphs(cpu, true));
  EXPECT_FALSE(UseCudaGraphs(cuda, false));
  EXPECT_EQ(UseCudaGraphs(cuda, true), CudaGraphsBuiltIn());
  setenv("SWEEP_TRAIN_CUDA_GRAPHS", "0", 1);
  EXPECT_FALSE(UseCudaGraphs(cuda, true));
  setenv("SWEEP_TRAIN_CUDA_GRAPHS", "1", 1);
  EXPECT_EQ(UseCudaGraphs(cuda, true), CudaGraphsBuiltIn());
  unsetenv("SWEEP_TRAIN_CUDA_GRAPHS");
}

// Methods whose computation is the same tensors and shapes every step may be captured; those
// whose host-side state resizes the forward (AdaLoRA's budget) may not. JORA's pair selection
// rewrites fixed-capacity slots in place, so it may be captured with every selection.
TEST(CudaGraphSafe, FollowsWhatEachMethodChangesBetweenSteps) {
  torch::manual_seed(2);
  LinearShape shape;
  shape.d_out = 64;
  shape.d_in = 64;
  auto safe = [&](const nlohmann::json& settings) {
    torch::Tensor w = torch::randn({shape.d_out, shape.d_in});
    return adapters::MakeAdapter(settings, w, torch::Tensor(), shape)->CudaGraphSafe();
  };
  for (const char* m : {"lora", "dora", "pre_diag", "sora", "sorsa"}) {
    EXPECT_TRUE(safe({{"method", m}, {"r", 4}})) << m;
  }
  EXPECT_TRUE(safe({{"method", "ia3"}}));  // IA3 has no rank (an unknown option is an error)
  EXPECT_TRUE(safe({{"method", "oft"}, {"oft_block_size", 4}}));
  EXPECT_TRUE(safe({{"method", "boft"}, {"boft_block_size", 4}}));
  EXPECT_TRUE(safe({{"method", "jora"}, {"S", 4}, {"k", 2}, {"selection", "none"}}));
  EXPECT_TRUE(safe({{"method", "jora"}, {"S", 4}, {"k", 2}}));  // topk_ema, the default
  EXPECT_TRUE(safe({{"method", "jora"}, {"S", 4}, {"k", 2}, {"selection", "random"}}));
  EXPECT_FALSE(safe({{"method", "adalora"}, {"init_r", 4}, {"target_r", 2}}));
}

}  // namespace
}  // namespace sweepd::trainer
