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

}  // namespace sweepd::models
