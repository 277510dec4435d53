// The adapters of one job: built around the layers a track selects, frozen base weights
// left untouched, and saved/loaded under PEFT's tensor names
// ("base_model.model.<module>.lora_A.weight").
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/job_config.h"
#include "worker/adapters/adapter.h"
#include "worker/models/llama.h"

namespace sweepd::trainer {

struct AttachedAdapter {
  std::string module;  // "model.layers.0.self_attn.q_proj"
  std::shared_ptr<adapters::Adapter> adapter;
};

class AdapterSet {
 public:
  // Attaches one adapter per selected layer: A = q_proj,v_proj; B = every linear of the
  // blocks; else track.modules. Throws InvalidInput for unknown methods or
  // modules. Freezes every base parameter.
  static AdapterSet Attach(models::LlamaForCausalLM& model, const nlohmann::json& settings, const TrackSpec& track);

  const std::vector<AttachedAdapter>& adapters() const { return adapters_; }
  int64_t TrainableParameters() const;
  // Whether every adapter may run inside a CUDA graph (Adapter::CudaGraphSafe).
  bool CudaGraphSafe() const;
  // Trainable (and state) tensors by PEFT key.
  std::map<std::string, torch::Tensor> Tensors(bool with_state) const;
  // Trainable tensors by PEFT key as PEFT's layers read them (Adapter::ToPeft).
  std::map<std::string, torch::Tensor> PeftTensors() const;
  // Copies the tensors of a PEFT adapter_model.safetensors (Adapter::FromPeft); throws
  // std::invalid_argument naming `file` and the tensor that is missing, mis-shaped (an
  // adapter for another base) or not one of this adapter set's.
  void LoadPeft(const std::map<std::string, torch::Tensor>& tensors, const std::string& file);
  // Copies tensors saved by Tensors(true); throws std::invalid_argument naming `file` and
  // the tensor that is missing or mis-shaped.
  void Load(const std::map<std::string, torch::Tensor>& tensors, const std::string& file);

 private:
  std::vector<AttachedAdapter> adapters_;
};

// The modules a track names: A, B (all-linear) or its explicit list.
std::vector<std::string> TrackModules(const TrackSpec& track);

}  // namespace sweepd::trainer
