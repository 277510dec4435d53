// Checkpoint folders (see checkpoint.h).
#include "worker/trainer/checkpoint.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "worker/io/safetensors.h"

namespace sweepd::trainer {
namespace fs = std::filesystem;

std::map<std::string, torch::Tensor> ReadAllTensors(const std::string& path) {
  auto file = io::SafetensorsFile::Open(path);
  std::map<std::string, torch::Tensor> out;
  for (const std::string& name : file.Names()) out[name] = file.Get(name).clone();
  return out;
}

std::string SaveCheckpoint(const std::string& workdir, int64_t step, const std::map<std::string, torch::Tensor>& adapter,
                           const std::map<std::string, torch::Tensor>& optimizer, const nlohmann::json& state) {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%08lld", static_cast<long long>(step));
  const fs::path root = fs::path(workdir) / "checkpoints";
  const fs::path final_dir = root / name;
  const fs::path tmp = root / (std::string(".") + name + ".tmp" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  io::SaveSafetensors((tmp / "adapter_model.safetensors").string(), adapter, {{"format", "pt"}});
  io::SaveSafetensors((tmp / "optimizer.safetensors").string(), optimizer, {{"format", "pt"}});
  {
    std::ofstream out(tmp / "trainer_state.json");
    out << state.dump(2) << "\n";
    out.flush();
    if (!out) throw std::runtime_error((tmp / "trainer_state.json").string() + ": cannot write");
  }
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  return final_dir.string();
}

std::optional<Checkpoint> LoadLatestCheckpoint(const std::string& workdir) {
  const fs::path root = fs::path(workdir) / "checkpoints";
  if (!fs::is_directory(root)) return std::nullopt;
  std::optional<fs::path> best;
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string n = entry.path().filename().string();
    if (!entry.is_directory() || n.rfind("step-", 0) != 0) continue;
    if (!best || n > best->filename().string()) best = entry.path();
  }
  if (!best) return std::nullopt;
  Checkpoint c;
  c.path = best->string();
  c.adapter = ReadAllTensors((*best / "adapter_model.safetensors").string());
  c.optimizer = ReadAllTensors((*best / "optimizer.safetensors").string());
  std::ifstream in(*best / "trainer_state.json");
  if (!in) throw std::invalid_argument(c.path + ": no trainer_state.json");
  try {
    c.state = nlohmann::json::parse(in);
    c.step = c.state.at("step").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(c.path + "/trainer_state.json: " + e.what());
  }
  return c;
}

}  // namespace sweepd::trainer
