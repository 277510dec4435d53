// Adapter folders in Hugging Face PEFT's own layout (adapter_config.json +
// adapter_model.safetensors) for the methods PEFT has: LoRA (rsLoRA), DoRA, IA3, OFT.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/job_config.h"
#include "worker/models/llama.h"
#include "worker/trainer/adapter_set.h"

namespace sweepd::trainer {

// True when `settings` names a method PEFT can load.
bool HasPeftLayout(const nlohmann::json& settings);

// Writes FOLDER/adapter_config.json and FOLDER/adapter_model.safetensors.
void WritePeftFolder(const std::string& folder, const nlohmann::json& settings, const TrackSpec& track,
                     const AdapterSet& adapters, const std::string& base_model);

struct PeftAdapter {
  nlohmann::json settings;  // our adapter settings, {"method": ..., ...}
  TrackSpec track;          // the target modules
};

// Reads FOLDER/adapter_config.json; throws std::invalid_argument naming the file for an
// unsupported peft_type or option.
PeftAdapter ReadPeftConfig(const std::string& folder);

// Attaches the adapter of a PEFT folder to `model` and loads its tensors.
AdapterSet LoadPeftFolder(const std::string& folder, models::LlamaForCausalLM& model);

}  // namespace sweepd::trainer
