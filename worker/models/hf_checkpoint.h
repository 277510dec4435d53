// Loading and saving Llama/Mistral weights in Hugging Face layout: config.json plus
// model.safetensors, or shards listed in model.safetensors.index.json (memory-mapped).
#pragma once

#include <string>

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

}  // namespace sweepd::models
