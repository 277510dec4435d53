// The fields of Hugging Face PEFT 0.21's adapter_config.json that every method shares
// (PeftConfigMixin and PeftConfig in peft/config.py) and LoraConfig's, which LoRA, rsLoRA,
// DoRA, LoRA+ and AdaLoRA (an AdaLoraConfig is a LoraConfig) all write.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/methods/method.h"

namespace sweepd::methods {

// PeftConfig's own fields, with the values sweep-train writes (inference_mode true, as
// save_pretrained leaves it); base_model_name_or_path, target_modules and peft_type are set
// by the writer.
nlohmann::json PeftBaseFields();
// Fields a reader takes as they are, whatever their value (the base model's name, PEFT's
// version, the auto mapping of the model class, the target modules read separately).
const std::vector<std::string>& PeftFreeFields();

// Every LoraConfig field with its default (runtime_config is not saved by PEFT).
nlohmann::json LoraConfigFields();
// LoraConfig's fields for a method built on LoRA's branch (r, lora_alpha, lora_dropout,
// use_rslora from an rslora option, use_dora when DoRA's tensor code builds it).
Result<nlohmann::json> LoraToPeft(const MethodSettings& s, const PeftContext& context);
// A LoraConfig as our LoRA settings (lora, with rslora and dora flags).
Result<PeftSettings> LoraFromPeft(const nlohmann::json& config);

// target_modules of a config: a list or a string; the error names the field.
Result<std::vector<std::string>> PeftTargets(const nlohmann::json& config);

}  // namespace sweepd::methods
