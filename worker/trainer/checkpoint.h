// Training checkpoints under WORKDIR/checkpoints/step-NNNNNNNN/: the adapter alone
// (adapter_model.safetensors, PEFT names), the optimizer state (optimizer.safetensors) and
// the loop's own state (trainer_state.json). A checkpoint is written into a temporary folder,
// read back and compared, and only then appears by one rename: a killed run or a full disk
// never leaves a half-written one, and the checkpoints before it stay as they were.
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

// Writes a checkpoint and returns its folder. Throws IoError when it cannot be written
// completely (nothing of it is left behind then).
std::string SaveCheckpoint(const std::string& workdir, int64_t step, const std::map<std::string, torch::Tensor>& adapter,
                           const std::map<std::string, torch::Tensor>& optimizer, const nlohmann::json& state);

// The checkpoint with the highest step under WORKDIR/checkpoints, if any. One that cannot be
// read is set aside (SetAsideCheckpoint) and reported as CorruptCheckpoint (worker/failures.h).
std::optional<Checkpoint> LoadLatestCheckpoint(const std::string& workdir);

// Renames a checkpoint folder that cannot be used to corrupt-step-NNNNNNNN beside it, so that
// the next resume takes the one before it, and throws CorruptCheckpoint saying so.
[[noreturn]] void SetAsideCheckpoint(const std::string& path, const std::string& problem);

// All tensors of a safetensors file, copied out of the mapping.
std::map<std::string, torch::Tensor> ReadAllTensors(const std::string& path);

}  // namespace sweepd::trainer
