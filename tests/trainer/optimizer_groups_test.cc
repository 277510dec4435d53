// The optimizer groups of a job's adapters (worker/trainer/optimizer_groups.h), read back
// from the optimizer that sweep-train run and bench build: per-group rates (JORA's lr_theta,
// lr_core) and the per-tensor multipliers a method registers.
#include "worker/trainer/optimizer_groups.h"

#include <string>
#include <utility>
#include <vector>

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

// LoRA+ (Hayou et al. 2024): every B trains at lr_ratio times the learning rate of its A, as
// PEFT's create_loraplus_optimizer does; 16 (the paper's and PEFT's default) when not given.
TEST(OptimizerGroups, LoraPlusTrainsBAtLrRatioTimesTheRateOfA) {
  for (const auto& [settings, ratio] :
       std::vector<std::pair<nlohmann::json, double>>{{{{"method", "lora_plus"}, {"r", 4}}, 16.0},
                                                      {{{"method", "lora_plus"}, {"r", 4}, {"lr_ratio", 4.5}}, 4.5}}) {
    LlamaForCausalLM model = TinyModel();
    AdapterSet adapters = AdapterSet::Attach(model, settings, TrackSpec{"A", {}});
    TrainSpec train;
    train.lr = 3e-4;
    train.weight_decay = 0.01;
    AdamW optimizer;
    AddAdapterParams(optimizer, adapters, settings, train, "base_model.model.");
    ASSERT_FALSE(adapters.adapters().empty());
    for (const auto& a : adapters.adapters()) {
      const std::string prefix = "base_model.model." + a.module + ".";
      const ParamGroupSettings group_a = optimizer.SettingsOf(prefix + "lora_A.weight");
      const ParamGroupSettings group_b = optimizer.SettingsOf(prefix + "lora_B.weight");
      EXPECT_DOUBLE_EQ(group_a.lr, train.lr) << a.module;
      EXPECT_DOUBLE_EQ(group_b.lr / group_a.lr, ratio) << settings.dump() << " " << a.module;
      EXPECT_DOUBLE_EQ(group_b.weight_decay, train.weight_decay);
    }
  }
}

}  // namespace
}  // namespace sweepd::trainer
