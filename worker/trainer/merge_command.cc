// `sweep-train merge`: folds an adapter folder (PEFT's layout or sweep-train's own,
// peft_folder.h) into the weights of a Hugging Face model folder and writes a model folder that
// transformers loads as is: each adapted layer's W and b become the adapter's effective weight
// and bias (Adapter::EffectiveWeight/EffectiveBias, the maths the conformance files check), so
// the merged model computes what base + adapter computes. Layout as save_pretrained's.
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/byte_size.h"
#include "worker/failures.h"
#include "worker/models/hf_checkpoint.h"
#include "worker/trainer/commands.h"
#include "worker/trainer/merge.h"
#include "worker/trainer/peft_folder.h"

namespace sweepd::trainer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

int64_t ParseShardSize(const std::string& text) {
  Result<int64_t> size = ParseByteSize(text);
  if (!size.ok()) throw InvalidInput("--max-shard-size " + size.status().message());
  return *size;
}

// The dtype the base config.json declares (transformers 5's "dtype", 4.x's "torch_dtype"),
// float32 when it names none of the three a merged folder can have.
std::string ConfigDtype(const json& config) {
  for (const char* key : {"dtype", "torch_dtype"}) {
    if (!config.contains(key) || !config[key].is_string()) continue;
    const std::string d = config[key];
    if (d == "float32" || d == "bfloat16" || d == "float16") return d;
  }
  return "float32";
}

void CheckOutFolder(const std::string& out) {
  if (!fs::exists(out)) return;
  if (!fs::is_directory(out) || !fs::is_empty(out)) {
    throw InvalidInput(out + ": --out already exists and is not empty; give a new folder (merge never overwrites)");
  }
}

// The adapter attached to `model`, every error naming the adapter folder.
AdapterSet LoadAdapter(const std::string& folder, models::LlamaForCausalLM& model) {
  try {
    return LoadPeftFolder(folder, model);
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    if (m.find(folder) != std::string::npos) throw;
    throw InvalidInput(folder + ": " + m);
  }
}

// Refuses, before any weight is touched, an adapter that has no merged weight.
void CheckLinear(const std::string& folder, const AdapterSet& set) {
  for (const AttachedAdapter& a : set.adapters()) {
    if (a.adapter->IsLinearInInput()) continue;
    throw InvalidInput((fs::path(folder) / "adapter_config.json").string() + ": the " + a.adapter->Method() +
                       " adapter of '" + a.module +
                       "' is not linear in its input (tanh_clip: true), so no merged weight computes it; "
                       "serve it with the adapter attached");
  }
}

// W ← W_eff and b ← b_eff for every adapted layer, the adapter detached afterwards.
void FoldAdapters(models::LlamaForCausalLM& model, const AdapterSet& set) {
  torch::NoGradGuard no_grad;
  auto linears = model->Linears();
  for (const AttachedAdapter& a : set.adapters()) {
    models::AdaptableLinear& linear = linears.at(a.module);
    const torch::Tensor weight = a.adapter->EffectiveWeight().detach().clone();
    const torch::Tensor bias = linear->bias().defined() ? a.adapter->EffectiveBias().detach().clone() : torch::Tensor();
    linear->Attach(nullptr);
    linear->weight().copy_(weight);
    if (bias.defined()) linear->bias().copy_(bias);
  }
}

void WriteJson(const fs::path& path, const json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) throw IoError(IoErrorText(path.string(), "cannot write"));
}

}  // namespace

MergeResult MergeAdapter(const MergeArgs& a) {
  CheckOutFolder(a.out);
  const int64_t max_shard = ParseShardSize(a.max_shard_size);
  json config = models::ReadConfigJson(a.model);
  const std::string out_dtype_name = a.dtype.empty() ? ConfigDtype(config) : a.dtype;
  const torch::ScalarType out_dtype = models::ParseDtype(out_dtype_name);
  const torch::ScalarType compute = a.compute_dtype == "float64" ? torch::kFloat64 : torch::kFloat32;

  models::LlamaForCausalLM model = models::LoadHfModel(a.model, compute);
  const AdapterSet set = LoadAdapter(a.adapter, model);
  CheckLinear(a.adapter, set);
  FoldAdapters(model, set);

  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& p : model->named_parameters()) tensors.emplace_back(p.key(), p.value().detach().to(out_dtype));
  config["dtype"] = out_dtype_name;
  if (config.contains("torch_dtype")) config["torch_dtype"] = out_dtype_name;

  // Written beside --out and renamed at the end: a crash leaves no half-written model there.
  const fs::path out = fs::absolute(a.out).lexically_normal();
  const fs::path tmp = out.parent_path() / (out.filename().string() + ".partial-" + std::to_string(::getpid()));
  fs::create_directories(out.parent_path());
  fs::remove_all(tmp);
  std::vector<std::string> files;
  try {
    files = models::SaveHfWeights(tensors, tmp.string(), max_shard);
    WriteJson(tmp / "config.json", config);
    for (const std::string& f : models::CopyHfSideFiles(a.model, tmp.string())) files.push_back(f);
    fs::rename(tmp, out);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw;
  }
  MergeResult result;
  result.folder = out.string();
  result.method = set.adapters().front().adapter->Method();
  result.layers = static_cast<int64_t>(set.adapters().size());
  result.files = static_cast<int64_t>(files.size()) + 1;
  result.dtype = out_dtype_name;
  for (const auto& t : tensors) result.total_params += t.second.numel();
  return result;
}

void AddMergeCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("merge",
                                 "Merge an adapter into a Hugging Face model folder (a model folder transformers "
                                 "loads, no adapter needed)");
  auto args = std::make_shared<MergeArgs>();
  cmd->add_option("--model", args->model, "the base model folder (config.json, safetensors)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--adapter", args->adapter,
                  "the adapter folder (adapter_config.json, adapter_model.safetensors), PEFT's or sweep-train's")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--out", args->out, "the merged model folder to write (must not exist or be empty)")->required();
  cmd->add_option("--dtype", args->dtype, "dtype of the written weights (default: the base config's)")
      ->check(CLI::IsMember({"float32", "bfloat16", "float16"}));
  cmd->add_option("--max-shard-size", args->max_shard_size,
                  "largest shard, bytes or e.g. 500MB, 5GB, 2GiB (default 5GB, as transformers)");
  cmd->add_option("--compute-dtype", args->compute_dtype, "dtype the merge is computed in (default float32)")
      ->check(CLI::IsMember({"float32", "float64"}));
  cmd->callback([args, exit_code] {
    try {
      const MergeResult r = MergeAdapter(*args);
      std::cout << "merged " << r.layers << " " << r.method << " layer(s) of " << args->adapter << " into "
                << args->model << ": " << r.folder << " (" << r.dtype << ", " << r.files << " files)\n";
      *exit_code = 0;
    } catch (const std::exception& e) {
      std::cerr << "sweep-train merge: " << e.what() << "\n";
      *exit_code = 2;
    }
  });
}

}  // namespace sweepd::trainer
