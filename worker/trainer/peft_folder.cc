// PEFT's adapter_config.json fields (peft 0.21) mapped to and from our adapter settings;
// tensor names are PEFT's already (AdapterSet).
#include "worker/trainer/peft_folder.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "worker/failures.h"
#include "worker/io/safetensors.h"
#include "worker/trainer/checkpoint.h"

namespace sweepd::trainer {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string MethodOf(const json& settings) { return settings.value("method", ""); }

double Number(const json& s, const char* a, const char* b, double fallback) {
  if (s.contains(a) && s[a].is_number()) return s[a].get<double>();
  if (s.contains(b) && s[b].is_number()) return s[b].get<double>();
  return fallback;
}

}  // namespace

bool HasPeftLayout(const json& settings) {
  const std::string m = MethodOf(settings);
  return m == "lora" || m == "rslora" || m == "dora" || m == "ia3" || m == "oft";
}

void WritePeftFolder(const std::string& folder, const json& settings, const TrackSpec& track,
                     const AdapterSet& adapters, const std::string& base_model) {
  const std::string m = MethodOf(settings);
  std::vector<std::string> targets;
  for (const std::string& t : TrackModules(track)) targets.push_back(t);
  json targets_json = targets.size() == 1 && targets[0] == "all-linear" ? json("all-linear") : json(targets);
  json config = {{"base_model_name_or_path", base_model}, {"bias", "none"}, {"fan_in_fan_out", false},
                 {"inference_mode", true}, {"modules_to_save", nullptr}, {"revision", nullptr},
                 {"target_modules", targets_json}, {"task_type", "CAUSAL_LM"}};
  if (m == "lora" || m == "rslora" || m == "dora") {
    const int64_t r = settings.value("r", 8);
    config["peft_type"] = "LORA";
    config["r"] = r;
    config["lora_alpha"] = Number(settings, "alpha", "lora_alpha", 8.0);
    config["lora_dropout"] = Number(settings, "dropout", "lora_dropout", 0.0);
    config["use_rslora"] = m == "rslora" || settings.value("rslora", false) || settings.value("use_rslora", false);
    config["use_dora"] = m == "dora";
    config["init_lora_weights"] = true;
  } else if (m == "ia3") {
    config["peft_type"] = "IA3";
    config["feedforward_modules"] = json::array({"down_proj"});
  } else if (m == "oft") {
    config["peft_type"] = "OFT";
    config["oft_block_size"] = settings.value("oft_block_size", 0);
    config["r"] = settings.value("r", 0);
    config["coft"] = settings.value("coft", false);
    config["eps"] = Number(settings, "eps", "eps", 6e-5);
    config["module_dropout"] = 0.0;
  } else {
    throw std::invalid_argument("method '" + m + "' has no PEFT layout");
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
