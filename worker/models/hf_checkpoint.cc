// Hugging Face checkpoint folders: parameter names are the checkpoint's own, so loading
// is a name lookup with shape checks.
#include "worker/models/hf_checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "worker/failures.h"
#include "worker/io/safetensors.h"

namespace sweepd::models {
namespace fs = std::filesystem;

namespace {

std::string ShapeText(at::IntArrayRef shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

nlohmann::json ReadJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InvalidInput(path + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw InvalidInput(path + ": not valid JSON (" + e.what() + ")");
  }
}

// Which file holds each tensor: the shard index when there is one, else model.safetensors.
std::map<std::string, std::shared_ptr<io::SafetensorsFile>> TensorFiles(const std::string& folder) {
  std::map<std::string, std::shared_ptr<io::SafetensorsFile>> files;
  const fs::path index = fs::path(folder) / "model.safetensors.index.json";
  if (fs::exists(index)) {
    const nlohmann::json j = ReadJsonFile(index.string());
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) {
      throw InvalidInput(index.string() + ": no 'weight_map' object");
    }
    std::map<std::string, std::shared_ptr<io::SafetensorsFile>> shards;
    for (const auto& [name, shard] : j["weight_map"].items()) {
      const std::string file = shard.get<std::string>();
      auto& open = shards[file];
      if (!open) open = std::make_shared<io::SafetensorsFile>(
                       io::SafetensorsFile::Open((fs::path(folder) / file).string()));
      files[name] = open;
    }
    return files;
  }
  const fs::path single = fs::path(folder) / "model.safetensors";
  if (!fs::exists(single)) {
    throw InvalidInput(folder + ": no model.safetensors or model.safetensors.index.json");
  }
  auto file = std::make_shared<io::SafetensorsFile>(io::SafetensorsFile::Open(single.string()));
  for (const std::string& name : file->Names()) files[name] = file;
  return files;
}

}  // namespace

torch::ScalarType ParseDtype(const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16") return torch::kFloat16;
  throw InvalidInput("model.dtype must be float32, bfloat16 or float16, not '" + name + "'");
}

nlohmann::json ReadConfigJson(const std::string& folder) {
  return ReadJsonFile((fs::path(folder) / "config.json").string());
}

namespace {

// Fills every parameter of `model` from the checkpoint; `make_target` gives the tensor a
// parameter's data is read into (the parameter itself, or a new one on the target device).
template <typename MakeTarget>
void ReadParameters(LlamaForCausalLM& model, const std::string& folder, MakeTarget make_target) {
  const auto files = TensorFiles(folder);
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    auto it = files.find(p.key());
    if (it == files.end()) {
      const std::string where = fs::exists(fs::path(folder) / "model.safetensors")
                                    ? (fs::path(folder) / "model.safetensors").string()
                                    : folder;
      throw InvalidInput(where + ": missing tensor '" + p.key() + "'");
    }
    const io::SafetensorsFile& file = *it->second;
    const std::vector<int64_t> shape = file.Shape(p.key());
    if (at::IntArrayRef(shape) != p.value().sizes()) {
      throw InvalidInput(file.path() + ": tensor '" + p.key() + "' has shape " + ShapeText(shape) +
                         " but config.json implies " + ShapeText(p.value().sizes()));
    }
    torch::Tensor target = make_target(p.value());
    file.CopyTo(p.key(), target);
    // Frees the construction-time storage at once: host memory holds one parameter extra at most.
    if (!target.is_same(p.value())) p.value().set_data(target);
  }
}

}  // namespace

void LoadHfWeights(LlamaForCausalLM& model, const std::string& folder) {
  ReadParameters(model, folder, [](const torch::Tensor& p) { return p; });
}

LlamaForCausalLM LoadHfModel(const std::string& folder, torch::ScalarType dtype, const torch::Device& device) {
  const std::string config_path = (fs::path(folder) / "config.json").string();
  Result<LlamaConfig> config = LlamaConfigFromJson(ReadConfigJson(folder), config_path);
  if (!config.ok()) throw InvalidInput(config.status().message());
  // Built on CPU in float32; the projections' storage is never written (no host pages), and
  // each parameter is replaced by the checkpoint's tensor on `device` in `dtype`.
  LlamaForCausalLM model(*config);
  const auto options = torch::TensorOptions().dtype(dtype).device(device);
  ReadParameters(model, folder, [&](const torch::Tensor& p) { return torch::empty(p.sizes(), options); });
  model->to(device, dtype);  // anything that is not a checkpoint tensor (no-op for the parameters)
  if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  return model;
}

void SaveHfModel(LlamaForCausalLM& model, const nlohmann::json& config, const std::string& folder) {
  fs::create_directories(folder);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& p : model->named_parameters()) tensors[p.key()] = p.value().detach();
  io::SaveSafetensors((fs::path(folder) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  const std::string tmp = (fs::path(folder) / "config.json.tmp").string();
  {
    std::ofstream out(tmp);
    out << config.dump(2) << "\n";
    if (!out) throw IoError(IoErrorText(tmp, "cannot write"));
  }
  fs::rename(tmp, fs::path(folder) / "config.json");
}

std::vector<std::string> SaveHfWeights(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                                       const std::string& folder, int64_t max_shard_bytes) {
  std::vector<std::vector<size_t>> shards;  // indices into `tensors`
  int64_t current = 0, total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const torch::Tensor& t = tensors[i].second;
    const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
    total += bytes;
    if (shards.empty() || (current > 0 && current + bytes > max_shard_bytes)) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(i);
    current += bytes;
  }
  fs::create_directories(folder);
  if (shards.size() <= 1) {
    std::map<std::string, torch::Tensor> all(tensors.begin(), tensors.end());
    io::SaveSafetensors((fs::path(folder) / "model.safetensors").string(), all, {{"format", "pt"}});
    return {"model.safetensors"};
  }
  auto shard_name = [&](size_t i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    return std::string(name);
  };
  std::vector<std::string> files;
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    std::map<std::string, torch::Tensor> shard;
    for (size_t i : shards[s]) {
      shard[tensors[i].first] = tensors[i].second;
      weight_map[tensors[i].first] = shard_name(s);
    }
    io::SaveSafetensors((fs::path(folder) / shard_name(s)).string(), shard, {{"format", "pt"}});
    files.push_back(shard_name(s));
  }
  const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  const fs::path index_path = fs::path(folder) / "model.safetensors.index.json";
  std::ofstream out(index_path);
  out << index.dump(2) << "\n";
  if (!out) throw IoError(IoErrorText(index_path.string(), "cannot write"));
  files.push_back("model.safetensors.index.json");
  return files;
}

std::vector<std::string> CopyHfSideFiles(const std::string& from, const std::string& to) {
  static const char* const kFiles[] = {
      "tokenizer.json",   "tokenizer.model",     "tokenizer_config.json", "special_tokens_map.json",
      "added_tokens.json", "vocab.json",         "merges.txt",            "chat_template.jinja",
      "chat_template.json", "generation_config.json"};
  std::vector<std::string> copied;
  for (const char* name : kFiles) {
    const fs::path src = fs::path(from) / name;
    if (!fs::is_regular_file(src)) continue;
    std::error_code ec;
    fs::copy_file(src, fs::path(to) / name, fs::copy_options::overwrite_existing, ec);
    if (ec) throw IoError((fs::path(to) / name).string() + ": cannot copy from " + src.string() + ": " + ec.message());
    copied.push_back(name);
  }
  return copied;
}

}  // namespace sweepd::models
