// Writes and reads adapter folders: the config through the method registry
// (common/methods/peft_config.h), the tensors through the adapter set under PEFT's names.
#include "worker/trainer/peft_folder.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <stdexcept>

#include "common/methods/peft_config.h"
#include "common/methods/registry.h"
#include "worker/failures.h"
#include "worker/io/safetensors.h"
#include "worker/trainer/checkpoint.h"

namespace sweepd::trainer {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

methods::MethodSettings Resolved(const json& settings, const std::string& where) {
  Result<methods::MethodSettings> s = methods::Resolve(settings);
  if (!s.ok()) throw InvalidInput(where + s.status().message());
  return *s;
}

// The state tensor of a rank-pruned adapter (AdaLoRA's rank_mask: 1 kept, 0 pruned), if any.
std::optional<torch::Tensor> RankMask(const AttachedAdapter& a) {
  for (const adapters::NamedTensor& t : a.adapter->State()) {
    if (t.name == "rank_mask") return t.tensor;
  }
  return std::nullopt;
}

// PEFT's rank_pattern key for a layer: its lora_E parameter, the adapter name left out
// ("model.layers.0.self_attn.q_proj.lora_E", as AdaLoraModel._get_adapter_state_dict saves it).
std::string RankPatternKey(const AttachedAdapter& a) { return a.module + ".lora_E"; }

// The adapters' rank_pattern once a rank is pruned (per layer, a list of booleans, true where a
// rank is kept, as PEFT's RankAllocator.mask_to_budget writes it); null while none is.
json RankPatternOf(const AdapterSet& adapters) {
  json pattern = json::object();
  bool pruned = false;
  for (const AttachedAdapter& a : adapters.adapters()) {
    std::optional<torch::Tensor> mask = RankMask(a);
    if (!mask) continue;
    const torch::Tensor kept = mask->detach().to(torch::kCPU).view({-1}) != 0;
    json list = json::array();
    for (int64_t i = 0; i < kept.size(0); ++i) list.push_back(kept[i].item<bool>());
    pruned |= !kept.all().item<bool>();
    pattern[RankPatternKey(a)] = list;
  }
  return pruned ? pattern : json();
}

// Sets each layer's rank_mask from a folder's rank_pattern, before its sliced tensors are read.
void ApplyRankPattern(const json& pattern, AdapterSet& adapters, const std::string& file) {
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (const AttachedAdapter& a : adapters.adapters()) {
    std::optional<torch::Tensor> mask = RankMask(a);
    if (!mask) continue;
    const std::string key = RankPatternKey(a);
    if (!pattern.contains(key)) throw InvalidInput(file + ": rank_pattern has no entry '" + key + "'");
    const json& list = pattern[key];
    if (!list.is_array() || static_cast<int64_t>(list.size()) != mask->numel()) {
      throw InvalidInput(file + ": rank_pattern '" + key + "' must list " + std::to_string(mask->numel()) +
                         " booleans (init_r), not " + list.dump());
    }
    std::vector<float> values;
    for (const json& kept : list) {
      if (!kept.is_boolean()) throw InvalidInput(file + ": rank_pattern '" + key + "' must list true/false only");
      values.push_back(kept.get<bool>() ? 1.0f : 0.0f);
    }
    mask->copy_(torch::tensor(values).view(mask->sizes()));
    used.insert(key);
  }
  for (const auto& [key, value] : pattern.items()) {
    if (!used.count(key)) throw InvalidInput(file + ": rank_pattern '" + key + "' names no adapted layer");
  }
}

void WriteConfig(const std::string& folder, const json& config) {
  std::ofstream out(fs::path(folder) / "adapter_config.json");
  out << config.dump(2) << "\n";
  if (!out) throw IoError(IoErrorText(folder + "/adapter_config.json", "cannot write"));
}

}  // namespace

bool HasPeftLayout(const json& settings) { return methods::Resolve(settings).ok(); }

void WritePeftFolder(const std::string& folder, const json& settings, const methods::PeftContext& context,
                     const AdapterSet& adapters, const std::string& base_model) {
  const std::string where = folder + ": ";
  const methods::MethodSettings s = Resolved(settings, where);
  methods::PeftContext with_pattern = context;
  if (with_pattern.rank_pattern.is_null()) with_pattern.rank_pattern = RankPatternOf(adapters);
  Result<json> config = methods::PeftConfigFor(s, with_pattern, base_model);
  if (!config.ok()) throw InvalidInput(where + config.status().message());
  fs::create_directories(folder);
  // Our own layout keeps the state that rebuilds the adapter too (JORA's pairs, SORSA's split).
  io::SaveSafetensors((fs::path(folder) / "adapter_model.safetensors").string(),
                      methods::HasOwnPeftLayout(s.method()) ? adapters.Tensors(true) : adapters.PeftTensors(),
                      {{"format", "pt"}});
  WriteConfig(folder, *config);
}

namespace {

methods::PeftContext JobContext(const JobConfig& config) {
  methods::PeftContext context;
  context.targets = TrackModules(config.track);
  context.total_steps = config.train.steps;
  return context;
}

}  // namespace

bool HasPeftLayout(const JobConfig& config) {
  Result<methods::MethodSettings> s = methods::Resolve(config.adapter);
  if (!s.ok()) return false;
  if (methods::HasOwnPeftLayout(s->method())) return true;
  return s->method().to_peft && s->method().to_peft(*s, JobContext(config)).ok();
}

void WritePeftFolder(const std::string& folder, const JobConfig& config, const AdapterSet& adapters) {
  WritePeftFolder(folder, config.adapter, JobContext(config), adapters, config.model.source);
}

PeftAdapter ReadPeftConfig(const std::string& folder) {
  Result<methods::PeftConfigRead> read = methods::ReadPeftConfigFile(folder);
  if (!read.ok()) throw InvalidInput(read.status().message());
  PeftAdapter a;
  a.settings = read->settings;
  a.context = read->context;
  a.track.name = "peft";
  a.track.modules = read->context.targets;
  a.own_layout = read->own_layout;
  return a;
}

void CheckSameAdapter(const std::string& folder, const PeftAdapter& read, const json& expected) {
  methods::PeftConfigRead r;
  r.settings = read.settings;
  r.context = read.context;
  r.own_layout = read.own_layout;
  if (Status s = methods::CheckSameSettings(folder, r, expected); !s.ok()) throw InvalidInput(s.message());
}

PeftAdapter CheckInitFolder(const std::string& folder, const JobConfig& config) {
  PeftAdapter read = ReadPeftConfig(folder);
  CheckSameAdapter(folder, read, config.adapter);
  std::vector<std::string> job = TrackModules(config.track), given = read.context.targets;
  std::sort(job.begin(), job.end());
  std::sort(given.begin(), given.end());
  const auto all = [](const std::vector<std::string>& t) {
    return std::find(t.begin(), t.end(), "all-linear") != t.end();
  };
  // "all-linear" against a list is left to the tensors: LoadFolderTensors names the first that differs.
  if (job != given && !all(job) && !all(given)) {
    throw InvalidInput(folder + ": target_modules is " + json(given).dump() + " in the folder, " + json(job).dump() +
                       " on the job's track " + config.track.name);
  }
  return read;
}

void LoadFolderTensors(const std::string& folder, const PeftAdapter& read, AdapterSet& adapters) {
  const std::string file = (fs::path(folder) / "adapter_model.safetensors").string();
  if (!fs::exists(file)) throw InvalidInput(file + ": missing (an adapter folder holds it)");
  try {
    if (read.own_layout) {
      adapters.Load(ReadAllTensors(file), file);
    } else {
      if (!read.context.rank_pattern.is_null()) ApplyRankPattern(read.context.rank_pattern, adapters, file);
      adapters.LoadPeft(ReadAllTensors(file), file);
    }
  } catch (const std::invalid_argument& e) {
    throw InvalidInput(e.what());  // the folder is the job's input: exit 2, not a crash
  }
}

AdapterSet LoadPeftFolder(const std::string& folder, models::LlamaForCausalLM& model) {
  PeftAdapter peft = ReadPeftConfig(folder);
  AdapterSet set = AdapterSet::Attach(model, peft.settings, peft.track);
  LoadFolderTensors(folder, peft, set);
  return set;
}

}  // namespace sweepd::trainer
