// Training checkpoints under WORKDIR/checkpoints/step-NNNNNNNN/: the adapter alone
// (adapter_model.safetensors, PEFT names), the optimizer state (optimizer.safetensors) and
// the loop's own state (trainer_state.json). A checkpoint appears by one rename, so a
// killed run never leaves a half-written one behind.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace sweepd::trainer {

struct Checkpoint {
  std::string path;  // the step-NNNNNNNN folder
  int64_t step = 0;
  std::map<std::string, torch::Tensor> adapter;
  std::map<std::string, torch::Tensor> optimizer;
  nlohmann::json state;
};

// Writes a checkpoint and returns its folder.
std::string SaveCheckpoint(const std::string& workdir, int64_t step, const std::map<std::string, torch::Tensor>& adapter,
                           const std::map<std::string, torch::Tensor>& optimizer, const nlohmann::json& state);

// The checkpoint with the highest step under WORKDIR/checkpoints, if any.
std::optional<Checkpoint> LoadLatestCheckpoint(const std::string& workdir);

// All tensors of a safetensors file, copied out of the mapping.
std::map<std::string, torch::Tensor> ReadAllTensors(const std::string& path);

}  // namespace sweepd::trainer
