// PEFT 0.21's shared adapter_config.json fields; see peft_layout.h.
#include "common/methods/peft_layout.h"

namespace sweepd::methods {
using nlohmann::json;

json PeftBaseFields() {
  return {{"auto_mapping", nullptr},  {"base_model_name_or_path", nullptr}, {"inference_mode", true},
          {"peft_type", nullptr},     {"peft_version", "0.21.0"},          {"revision", nullptr},
          {"target_modules", nullptr}, {"task_type", "CAUSAL_LM"}};
}

const std::vector<std::string>& PeftFreeFields() {
  static const std::vector<std::string> free = {"auto_mapping",   "base_model_name_or_path", "inference_mode",
                                                "peft_type",      "peft_version",            "revision",
                                                "target_modules", "task_type"};
  return free;
}

json LoraConfigFields() {
  return {{"alora_invocation_tokens", nullptr},
          {"alpha_pattern", json::object()},
          {"arrow_config", nullptr},
          {"bias", "none"},
          {"corda_config", nullptr},
          {"ensure_weight_tying", false},
          {"eva_config", nullptr},
          {"exclude_modules", nullptr},
          {"fan_in_fan_out", false},
          {"init_lora_weights", true},
          {"kasa_config", nullptr},
          {"layer_replication", nullptr},
          {"layers_pattern", nullptr},
          {"layers_to_transform", nullptr},
          {"loftq_config", json::object()},
          {"lora_alpha", 8},
          {"lora_bias", false},
          {"lora_dropout", 0.0},
          {"lora_ga_config", nullptr},
          {"megatron_config", nullptr},
          {"megatron_core", "megatron.core"},
          {"modules_to_save", nullptr},
          {"monteclora_config", nullptr},
          {"qalora_group_size", 16},
          {"r", 8},
          {"rank_pattern", json::object()},
          {"target_parameters", nullptr},
          {"trainable_token_indices", nullptr},
          {"use_bdlora", nullptr},
          {"use_dora", false},
          {"use_qalora", false},
          {"use_rslora", false},
          {"velora_config", nullptr}};
}

Result<json> LoraToPeft(const MethodSettings& s, const PeftContext&) {
  return json{{"r", s.Int("r")},
              {"lora_alpha", s.Number("alpha")},
              {"lora_dropout", s.Number("dropout")},
              {"use_rslora", FindOption(s.method(), "rslora") != nullptr && s.Bool("rslora")},
              {"use_dora", s.method().adapter(s) == "dora"}};
}

Result<PeftSettings> LoraFromPeft(const json& c) {
  PeftSettings out;
  out.settings = {{"method", "lora"},
                  {"r", c.value("r", json(8))},
                  {"alpha", c.value("lora_alpha", json(8))},
                  {"dropout", c.value("lora_dropout", json(0.0))},
                  {"rslora", c.value("use_rslora", json(false))},
                  {"dora", c.value("use_dora", json(false))}};
  return out;
}

Result<std::vector<std::string>> PeftTargets(const json& c) {
  const json targets = c.value("target_modules", json());
  std::vector<std::string> out;
  if (targets.is_string()) {
    out.push_back(targets.get<std::string>());
  } else if (targets.is_array() && !targets.empty()) {
    for (const json& t : targets) {
      if (!t.is_string()) return Status::InvalidArgument("target_modules must list module names, e.g. [\"q_proj\"]");
      out.push_back(t.get<std::string>());
    }
  } else {
    return Status::InvalidArgument("target_modules must be a list of module names or a string");
  }
  return out;
}

}  // namespace sweepd::methods
