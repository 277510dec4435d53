// The optimizer groups of a job's adapters: one group per (tensor group, learning-rate
// multiplier). The group's rate is train.lr (train.lr_theta / lr_core for JORA's angle and
// core tensors) times the multiplier the method registers for the tensor (LoRA+'s lr_ratio
// for lora_B; Hayou et al. 2024, PEFT's create_loraplus_optimizer).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/job_config.h"
#include "worker/trainer/adamw.h"
#include "worker/trainer/adapter_set.h"

namespace sweepd::trainer {

// Adds every trainable tensor of `adapters` (built from `settings`) to `optimizer` under
// `prefix` + module + "." + tensor name, in groups with the rates above and train.weight_decay.
void AddAdapterParams(AdamW& optimizer, const AdapterSet& adapters, const nlohmann::json& settings,
                      const TrainSpec& train, const std::string& prefix);

}  // namespace sweepd::trainer
