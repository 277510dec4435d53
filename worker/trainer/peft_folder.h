// Adapter folders in Hugging Face PEFT 0.21's own layout (adapter_config.json +
// adapter_model.safetensors) for every method PEFT has; each method declares its config
// fields and their mapping (common/methods/), this file writes and reads the folder. Methods
// PEFT lacks (Pre-Diag, SORA, SORSA, JORA) get a folder of the same shape (docs/adapters.md).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/job_config.h"
#include "common/methods/method.h"
#include "worker/models/llama.h"
#include "worker/trainer/adapter_set.h"

namespace sweepd::trainer {

// True when `settings` resolve: every method has a folder, PEFT's or one of the same shape.
bool HasPeftLayout(const nlohmann::json& settings);
// True when the job's adapter has a PEFT equivalent (not, e.g., OFT with 2 or 3 Cayley–Neumann
// terms, whose series PEFT computes differently, or AdaLoRA with train.steps ≤ tinit + tfinal).
bool HasPeftLayout(const JobConfig& config);

// Writes FOLDER/adapter_config.json (every field of the method's PEFT config class, the
// values that rebuild what was trained) and FOLDER/adapter_model.safetensors. Throws
// std::invalid_argument when the settings have no PEFT equivalent.
void WritePeftFolder(const std::string& folder, const nlohmann::json& settings, const methods::PeftContext& context,
                     const AdapterSet& adapters, const std::string& base_model);
// The same for a finished job (its track, train.steps and base model).
void WritePeftFolder(const std::string& folder, const JobConfig& config, const AdapterSet& adapters);

struct PeftAdapter {
  nlohmann::json settings;       // our adapter settings, {"method": ..., ...}, resolved
  methods::PeftContext context;  // target modules, AdaLoRA's schedule
  TrackSpec track;               // the target modules as a track
  bool own_layout = false;       // a method PEFT lacks (Pre-Diag, SORA, SORSA, JORA)
};

// Reads FOLDER/adapter_config.json; throws std::invalid_argument, one line naming the file
// and the field, for a peft_type no method reads, a field PEFT 0.21's config class does not
// have, or a value sweep-train would not rebuild (e.g. OFT's block_share true).
PeftAdapter ReadPeftConfig(const std::string& folder);

// Throws std::invalid_argument naming the folder and both methods when `read` is not an
// adapter of `expected`'s method and settings.
void CheckSameAdapter(const std::string& folder, const PeftAdapter& read, const nlohmann::json& expected);

// adapter.init_from: reads FOLDER's config and checks it is an adapter of the job's method and
// settings on the job's track; throws InvalidInput naming the folder, the key and both values.
PeftAdapter CheckInitFolder(const std::string& folder, const JobConfig& config);
// Copies FOLDER's tensors into `adapters`, built from `read`'s settings (or the job's, checked
// by CheckInitFolder), with a pruned AdaLoRA's rank_pattern; throws InvalidInput naming the file
// and the tensor missing, mis-shaped (an adapter for another base) or unknown.
void LoadFolderTensors(const std::string& folder, const PeftAdapter& read, AdapterSet& adapters);

// Attaches the adapter of a PEFT folder to `model` and loads its tensors (AdapterSet::LoadPeft).
AdapterSet LoadPeftFolder(const std::string& folder, models::LlamaForCausalLM& model);

}  // namespace sweepd::trainer
