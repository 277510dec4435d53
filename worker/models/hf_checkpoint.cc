// Hugging Face checkpoint folders: parameter names are the checkpoint's own, so loading
// is a name lookup with shape checks.
#include "worker/models/hf_checkpoint.h"

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

void LoadHfWeights(LlamaForCausalLM& model, const std::string& folder) {
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
    torch::Tensor t = file.Get(p.key());
    if (t.sizes() != p.value().sizes()) {
      throw InvalidInput(file.path() + ": tensor '" + p.key() + "' has shape " +
                                  ShapeText(t.sizes()) + " but config.json implies " +
                                  ShapeText(p.value().sizes()));
    }
    p.value().copy_(t);
  }
}

LlamaForCausalLM LoadHfModel(const std::string& folder, torch::ScalarType dtype) {
  const std::string config_path = (fs::path(folder) / "config.json").string();
  Result<LlamaConfig> config = LlamaConfigFromJson(ReadConfigJson(folder), config_path);
  if (!config.ok()) throw InvalidInput(config.status().message());
  LlamaForCausalLM model(*config);
  model->to(dtype);
  LoadHfWeights(model, folder);
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

}  // namespace sweepd::models
