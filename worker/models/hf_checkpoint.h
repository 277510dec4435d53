// Loading and saving Llama/Mistral weights in Hugging Face layout: config.json plus
// model.safetensors, or shards listed in model.safetensors.index.json (memory-mapped).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "worker/models/llama.h"

namespace sweepd::models {

// "float32" | "bfloat16" | "float16"; throws InvalidInput otherwise.
torch::ScalarType ParseDtype(const std::string& name);

// Reads FOLDER/config.json; throws InvalidInput naming the file and the problem.
nlohmann::json ReadConfigJson(const std::string& folder);

// Builds the model of FOLDER/config.json and fills every parameter from the checkpoint,
// in `dtype` on `device`: each tensor goes from the memory-mapped file straight to the device
// and is converted there (io::SafetensorsFile::CopyTo), so a bf16 checkpoint loaded as bf16
// never has a float32 copy on the host, and host memory stays near one copy of the weights
// (none for a GPU). Throws InvalidInput naming the file and the tensor for a missing tensor,
// a shape that does not match config.json, or a non-floating tensor.
LlamaForCausalLM LoadHfModel(const std::string& folder, torch::ScalarType dtype,
                             const torch::Device& device = torch::kCPU);

// Copies every parameter of `model` from the checkpoint in `folder` (single or sharded),
// keeping each parameter's dtype and device.
void LoadHfWeights(LlamaForCausalLM& model, const std::string& folder);

// Writes FOLDER/config.json and FOLDER/model.safetensors (atomically).
void SaveHfModel(LlamaForCausalLM& model, const nlohmann::json& config, const std::string& folder);

// Hugging Face's default max_shard_size ("5GB", decimal as huggingface_hub parses it).
inline constexpr int64_t kHfMaxShardBytes = 5'000'000'000;

// Writes `tensors` into `folder` as transformers' save_pretrained does
// (huggingface_hub's split_torch_state_dict_into_shards): in the given order, a new shard when
// the next tensor would take the current one past `max_shard_bytes` (a larger tensor gets a
// shard of its own); one shard is model.safetensors, several are
// model-00001-of-0000N.safetensors plus model.safetensors.index.json ({"metadata":
// {"total_size": bytes}, "weight_map": {tensor: file}}). Returns the files written.
std::vector<std::string> SaveHfWeights(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                                       const std::string& folder, int64_t max_shard_bytes = kHfMaxShardBytes);

// Copies the files a model folder carries beside its weights (tokenizer.json, tokenizer.model,
// tokenizer_config.json, special_tokens_map.json, vocab/merges, chat_template.*,
// generation_config.json) from `from` to `to`, those that exist. Returns their names.
std::vector<std::string> CopyHfSideFiles(const std::string& from, const std::string& to);

}  // namespace sweepd::models
