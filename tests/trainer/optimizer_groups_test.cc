// The optimizer groups of a job's adapters (worker/trainer/optimizer_groups.h), read back
// from the optimizer that sweep-train run and bench build: per-group rates (JORA's lr_theta,
// lr_core) and the per-tensor multipliers a method registers.
#include "worker/trainer/optimizer_groups.h"

#include <string>

#include <gtest/gtest.h>

#include "worker/models/hf_checkpoint.h"
#include "worker/models/llama.h"
#include "worker/models/llama_config.h"

namespace sweepd::trainer {
namespace {

using models::LlamaForCausalLM;

const std::string kTinyLlama = std::string(SWEEPD_FIXTURES) + "/models/tiny-llama";

LlamaForCausalLM TinyModel() {
  torch::manual_seed(0);
  return LlamaForCausalLM(*models::LlamaConfigFromJson(models::ReadConfigJson(kTinyLlama), "config.json"));
}

// Plain LoRA keeps one learning rate for A and B.
TEST(OptimizerGroups, LoraTrainsAAndBAtTheSameRate) {
  LlamaForCausalLM model = TinyModel();
  const nlohmann::json settings = {{"method", "lora"}, {"r", 4}};
  AdapterSet adapters = AdapterSet::Attach(model, settings, TrackSpec{"A", {}});
  TrainSpec train;
  AdamW optimizer;
  AddAdapterParams(optimizer, adapters, settings, train, "");
  ASSERT_FALSE(adapters.adapters().empty());
  for (const auto& a : adapters.adapters()) {
    EXPECT_DOUBLE_EQ(optimizer.SettingsOf(a.module + ".lora_A.weight").lr, train.lr);
    EXPECT_DOUBLE_EQ(optimizer.SettingsOf(a.module + ".lora_B.weight").lr, train.lr);
  }
  EXPECT_THROW(optimizer.SettingsOf("no.such.param"), std::out_of_range);
}

// JORA's angles and core take train.lr_theta and train.lr_core; its magnitude takes train.lr.
TEST(OptimizerGroups, JoraAnglesAndCoreTakeTheirOwnRates) {
  LlamaForCausalLM model = TinyModel();
  const nlohmann::json settings = {{"method", "jora"}, {"S", 4}, {"k", 2}, {"selection", "none"}};
  AdapterSet adapters = AdapterSet::Attach(model, settings, TrackSpec{"A", {}});
  TrainSpec train;
  train.lr = 1e-3;
  train.lr_theta = 5e-3;
  train.lr_core = 2e-2;
  AdamW optimizer;
  AddAdapterParams(optimizer, adapters, settings, train, "");
  const std::string m = adapters.adapters().front().module + ".";
  EXPECT_DOUBLE_EQ(optimizer.SettingsOf(m + "theta_L").lr, *train.lr_theta);
  EXPECT_DOUBLE_EQ(optimizer.SettingsOf(m + "core.diag_params").lr, *train.lr_core);
  EXPECT_DOUBLE_EQ(optimizer.SettingsOf(m + "ecd_log_mag").lr, train.lr);
}

}  // namespace
}  // namespace sweepd::trainer
