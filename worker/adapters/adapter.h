// The interface every PEFT method implements for one frozen linear layer
// y = x Wᵀ + b (W [d_out, d_in]); the trainer, the merge code, the checkpoint code and
// the conformance command use nothing else. Maths per method: ../shared/methods.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/param_count.h"

namespace sweepd::adapters {

using ::sweepd::LinearShape;

// Which optimizer parameter group a trainable tensor belongs to (JORA's lr_theta, lr_core).
enum class ParamGroup { kDefault, kTheta, kCore };

struct NamedTensor {
  std::string name;  // PEFT's name without the adapter name, e.g. "lora_A.weight"
  torch::Tensor tensor;
  ParamGroup group = ParamGroup::kDefault;
};

class Adapter : public torch::nn::Module {
 public:
  ~Adapter() override = default;

  virtual std::string Method() const = 0;
  virtual const LinearShape& Shape() const = 0;

  // The adapted layer's output for x [..., d_in]; uses the merged weight when merged.
  virtual torch::Tensor Forward(const torch::Tensor& x) = 0;

  // Trainable tensors with their names and optimizer groups.
  virtual std::vector<NamedTensor> Trainable() = 0;
  // Non-trained state a checkpoint must keep (JORA's pairs and EMAs, AdaLoRA's ranknum).
  virtual std::vector<NamedTensor> State() { return {}; }

  // Closed-form count of the trainable parameters (equals the sum of Trainable() sizes).
  virtual int64_t ParameterCount() const = 0;

  // The effective weight and bias of the adapted layer (bias undefined when the layer has none).
  virtual torch::Tensor EffectiveWeight() = 0;
  virtual torch::Tensor EffectiveBias() = 0;
  // ΔW = W_eff − W_0.
  torch::Tensor DeltaWeight();

  // Folds the adapter into the base weight for overhead-free inference, and back.
  virtual void Merge() = 0;
  virtual void Unmerge() = 0;
  virtual bool Merged() const = 0;

  // Method-specific measures: orthogonality error of rotations, OER energy error, ...
  virtual std::map<std::string, double> Diagnostics() { return {}; }
  // Extra loss terms the method trains with (AdaLoRA's and SORSA's orthogonal regularisers).
  virtual torch::Tensor RegularizationLoss() { return {}; }
  // Called after each optimizer step (AdaLoRA's rank allocation, JORA's pair selection).
  virtual void AfterOptimizerStep(int64_t /*step*/, int64_t /*total_steps*/) {}

 protected:
  // The frozen base layer (never trained).
  virtual const torch::Tensor& BaseWeight() const = 0;
};

// Builds the adapter named by settings["method"] around a frozen layer. Throws
// std::invalid_argument naming the bad field for unknown methods or options.
std::shared_ptr<Adapter> MakeAdapter(const nlohmann::json& settings, torch::Tensor weight,
                                     torch::Tensor bias, const LinearShape& shape);

}  // namespace sweepd::adapters
