// PEFT's adapter_config.json fields (peft 0.21) mapped to and from our adapter settings;
// tensor names are PEFT's already (AdapterSet).
#include "worker/trainer/peft_folder.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "common/methods/registry.h"
#include "worker/failures.h"
#include "worker/io/safetensors.h"
#include "worker/trainer/checkpoint.h"

namespace sweepd::trainer {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The settings through the method registry (aliases resolved, defaults declared there).
methods::MethodSettings Resolved(const json& settings) {
  Result<methods::MethodSettings> s = methods::Resolve(settings);
  if (!s.ok()) throw InvalidInput(s.status().message());
  return *s;
}

}  // namespace

bool HasPeftLayout(const json& settings) {
  Result<methods::MethodSettings> s = methods::Resolve(settings);
  return s.ok() && !s->method().peft_type.empty();
}

void WritePeftFolder(const std::string& folder, const json& settings, const TrackSpec& track,
                     const AdapterSet& adapters, const std::string& base_model) {
  const methods::MethodSettings s = Resolved(settings);
  const std::string type = s.method().peft_type;
  std::vector<std::string> targets;
  for (const std::string& t : TrackModules(track)) targets.push_back(t);
  json targets_json = targets.size() == 1 && targets[0] == "all-linear" ? json("all-linear") : json(targets);
  json config = {{"base_model_name_or_path", base_model}, {"bias", "none"}, {"fan_in_fan_out", false},
                 {"inference_mode", true}, {"modules_to_save", nullptr}, {"revision", nullptr},
                 {"target_modules", targets_json}, {"task_type", "CAUSAL_LM"}};
  // LoRA's layout holds every method built by LoRA's or DoRA's tensor code (rsLoRA, LoRA+:
  // PEFT trains LoRA+ with the same LoRA adapter and only a different optimizer).
  if (type == "LORA") {
    config["peft_type"] = "LORA";
    config["r"] = s.Int("r");
    config["lora_alpha"] = s.Number("alpha");
    config["lora_dropout"] = s.Number("dropout");
    config["use_rslora"] = s.method().name == "rslora" || s.Bool("rslora", false);
    config["use_dora"] = s.method().adapter(s) == "dora";
    config["init_lora_weights"] = true;
  } else if (type == "IA3") {
    config["peft_type"] = "IA3";
    config["feedforward_modules"] = json::array({"down_proj"});
  } else if (type == "OFT") {
    config["peft_type"] = "OFT";
    config["oft_block_size"] = s.Int("oft_block_size");
    config["r"] = s.Int("r");
    config["coft"] = s.Bool("coft");
    config["eps"] = s.Number("eps");
    config["module_dropout"] = 0.0;
  } else {
    throw InvalidInput("method '" + s.method().name + "' has no PEFT layout");
  }
  fs::create_directories(folder);
  io::SaveSafetensors((fs::path(folder) / "adapter_model.safetensors").string(), adapters.Tensors(false),
                      {{"format", "pt"}});
  std::ofstream out(fs::path(folder) / "adapter_config.json");
  out << config.dump(2) << "\n";
  if (!out) throw IoError(IoErrorText(folder + "/adapter_config.json", "cannot write"));
}

PeftAdapter ReadPeftConfig(const std::string& folder) {
  const std::string path = (fs::path(folder) / "adapter_config.json").string();
  std::ifstream in(path);
  if (!in) throw InvalidInput(path + ": cannot open");
  json c;
  try {
    c = json::parse(in);
  } catch (const json::parse_error& e) {
    throw InvalidInput(path + ": not valid JSON (" + e.what() + ")");
  }
  PeftAdapter a;
  const std::string type = c.value("peft_type", "");
  if (type == "LORA") {
    a.settings = {{"method", c.value("use_dora", false) ? "dora" : "lora"},
                  {"r", c.value("r", 8)},
                  {"alpha", c.value("lora_alpha", 8.0)},
                  {"rslora", c.value("use_rslora", false)}};
    if (c.contains("rank_pattern") && c["rank_pattern"].is_object() && !c["rank_pattern"].empty()) {
      throw InvalidInput(path + ": rank_pattern is not supported");
    }
  } else if (type == "IA3") {
    a.settings = {{"method", "ia3"}};
  } else if (type == "OFT") {
    a.settings = {{"method", "oft"}, {"oft_block_size", c.value("oft_block_size", 0)}, {"r", c.value("r", 0)},
                  {"coft", c.value("coft", false)}};
    if (c.contains("eps") && c["eps"].is_number()) a.settings["eps"] = c["eps"];
  } else {
    throw InvalidInput(path + ": peft_type '" + type + "' is not supported (LORA, IA3, OFT)");
  }
  a.track.name = "peft";
  const json& targets = c.value("target_modules", json());
  if (targets.is_string()) {
    a.track.modules = {targets.get<std::string>()};
  } else if (targets.is_array()) {
    for (const auto& t : targets) a.track.modules.push_back(t.get<std::string>());
  } else {
    throw InvalidInput(path + ": target_modules must be a list or a string");
  }
  return a;
}

AdapterSet LoadPeftFolder(const std::string& folder, models::LlamaForCausalLM& model) {
  PeftAdapter peft = ReadPeftConfig(folder);
  AdapterSet set = AdapterSet::Attach(model, peft.settings, peft.track);
  const std::string file = (fs::path(folder) / "adapter_model.safetensors").string();
  set.Load(ReadAllTensors(file), file);
  return set;
}

}  // namespace sweepd::trainer
