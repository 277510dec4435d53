// The interface every PEFT method implements for one frozen linear layer
// y = x Wᵀ + b (W [d_out, d_in]); the trainer, the merge code, the checkpoint code and
// the conformance command use nothing else. A method's options, defaults and counts are its
// registration (common/methods/); the per-method files here (lora.cc, oft.cc, ...) hold
// only its tensor code and say which reference they follow.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/methods/method.h"
#include "common/param_count.h"

namespace sweepd::adapters {

using ::sweepd::LinearShape;

// Which optimizer parameter group a trainable tensor belongs to (JORA's lr_theta, lr_core).
// A method's per-tensor learning-rate multiplier (LoRA+'s lr_ratio) is declared by its
// registration (MethodInfo::lr_scale) and applied on top (worker/trainer/optimizer_groups.h).
enum class ParamGroup { kDefault, kTheta, kCore };

struct NamedTensor {
  std::string name;  // PEFT's saved name without the adapter name, e.g. "lora_A.weight"
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
  // ΔW = W_eff − W_0, W_0 the layer's weight before the adapter (SORSA overrides it: its
  // BaseWeight() is the residual left after the SVD split).
  virtual torch::Tensor DeltaWeight();
  // False when the adapted layer is not linear in x (JORA with tanh_clip): it has no ΔW, no
  // merge and no spectrum, and EffectiveWeight()/DeltaWeight()/Merge() throw.
  virtual bool IsLinearInInput() const { return true; }

  // Folds the adapter into the base weight for overhead-free inference, and back.
  virtual void Merge() = 0;
  virtual void Unmerge() = 0;
  virtual bool Merged() const = 0;

  // The factors (B [d_out, r], A [r, d_in]) when ΔW is exactly s · B A for a scalar s (LoRA,
  // rsLoRA, LoRA+), so that its spectrum is computed in O((d_out + d_in) r²) instead of from
  // the dense ΔW; nullopt for every other method.
  virtual std::optional<std::pair<torch::Tensor, torch::Tensor>> LowRankFactors() { return std::nullopt; }

  // A trainable tensor as PEFT's layer reads it from adapter_model.safetensors, and back
  // (identity but for OFT with the exact Cayley transform, whose sign convention is the
  // transpose of PEFT's exact branch).
  virtual torch::Tensor ToPeft(const std::string& /*name*/, const torch::Tensor& t) const { return t; }
  virtual torch::Tensor FromPeft(const std::string& /*name*/, const torch::Tensor& t) const { return t; }

  // Method-specific measures: orthogonality error of rotations, OER energy error, ...
  virtual std::map<std::string, double> Diagnostics() { return {}; }
  // Extra loss terms the method trains with (AdaLoRA's and SORSA's orthogonal regularisers),
  // this layer's share; the trainer averages them over the layers.
  virtual torch::Tensor RegularizationLoss() { return {}; }
  // How the trainer applies RegularizationLoss() at peak learning rate `lr`: its weight, and
  // whether its gradient joins the loss's before clipping (AdaLoRA, added to PEFT's loss) or is
  // added after clipping (SORSA's trainer: gamma / lr × calc_ortho, after clip_grad_norm_).
  struct RegularizerUse {
    double weight = 1.0;
    bool before_clipping = true;
  };
  virtual RegularizerUse Regularizer(double /*lr*/) const { return {}; }
  // Called after each optimizer step (AdaLoRA's rank allocation, JORA's pair selection).
  virtual void AfterOptimizerStep(int64_t /*step*/, int64_t /*total_steps*/) {}
  // Whether Forward() and RegularizationLoss() may be captured in a CUDA graph and replayed
  // (worker/trainer/cuda_graph.h): no value read on the host, the same shapes and the same
  // tensors every step (AfterOptimizerStep may change values in place, nothing else).
  // AdaLoRA's rank budget changes the computation: it says no (JORA keeps fixed-capacity slots).
  virtual bool CudaGraphSafe() const { return false; }

  // Copies `tensors` (keyed by the names of Trainable() and State(); PEFT's in-memory
  // ".default" infix and DoRA's ".weight" suffix are accepted too) into this adapter,
  // casting to its dtype and device. Returns the names of Trainable()/State() it did not
  // find. Throws std::invalid_argument naming the tensor on a shape mismatch.
  std::vector<std::string> Load(const std::map<std::string, torch::Tensor>& tensors);
  // Trainable() and State() as one name → tensor map, the form checkpoints save.
  std::map<std::string, torch::Tensor> Save();
  // Called at the end of Load(), for state kept on the host too (JORA's active pair counts).
  virtual void AfterLoad() {}

  // The frozen weight the adapter computes with (never trained; the un-merged weight even
  // while merged). For SORSA it is the residual W − s·B diag(S) A of the split.
  virtual const torch::Tensor& BaseWeight() const = 0;
};

// The options of an adapter's settings, already resolved by the method registry (types,
// ranges, aliases and unknown keys checked there). Reads without a fallback take the default
// the method declares; a fallback is for options the method does not have or that default
// to something computed (AdaLoRA's init_r from r).
class AdapterOptions {
 public:
  explicit AdapterOptions(methods::MethodSettings settings) : settings_(std::move(settings)) {}
  int64_t Int(const std::string& key) const { return settings_.Int(key); }
  int64_t Int(const std::string& key, int64_t fallback) const { return settings_.Int(key, fallback); }
  double Number(const std::string& key) const { return settings_.Number(key); }
  double Number(const std::string& key, double fallback) const { return settings_.Number(key, fallback); }
  bool Bool(const std::string& key) const { return settings_.Bool(key); }
  bool Bool(const std::string& key, bool fallback) const { return settings_.Bool(key, fallback); }
  std::string Choice(const std::string& key) const { return settings_.String(key); }
  bool Has(const std::string& key) const { return settings_.Has(key); }
  const nlohmann::json& json() const { return settings_.json(); }
  const methods::MethodSettings& settings() const { return settings_; }

 private:
  methods::MethodSettings settings_;
};

// What most adapters share: the frozen W and b, the shape, and merging by writing the
// effective weight into W in place (the un-merged W kept on the host for Unmerge, so the
// round trip is exact). Subclasses give the un-merged forward and the effective weight.
class FrozenLinearAdapter : public Adapter {
 public:
  FrozenLinearAdapter(std::string method, torch::Tensor weight, torch::Tensor bias, LinearShape shape);

  std::string Method() const override { return method_; }
  const LinearShape& Shape() const override { return shape_; }
  torch::Tensor Forward(const torch::Tensor& x) override;
  torch::Tensor EffectiveWeight() override;
  torch::Tensor EffectiveBias() override;
  void Merge() override;
  void Unmerge() override;
  bool Merged() const override { return merged_; }
  const torch::Tensor& BaseWeight() const override { return merged_ ? saved_weight_ : weight_; }

 protected:
  // The adapted output with the adapter applied on the fly (never called while merged).
  virtual torch::Tensor AdaptedForward(const torch::Tensor& x) = 0;
  // W_eff and b_eff from the frozen W and b, differentiable in the adapter's tensors.
  virtual torch::Tensor ComputeWeight() = 0;
  virtual torch::Tensor ComputeBias() { return bias_; }

  // Registers a trainable tensor under `name` (dots become underscores for the module).
  torch::Tensor AddTrainable(const std::string& name, torch::Tensor t, ParamGroup group = ParamGroup::kDefault);
  std::vector<NamedTensor> TrainableList() const { return trainable_; }
  torch::TensorOptions Options() const { return weight_.options(); }

  torch::Tensor weight_;  // frozen W [d_out, d_in]; holds W_eff while merged
  torch::Tensor bias_;    // frozen b [d_out] or undefined

 private:
  std::string method_;
  LinearShape shape_;
  std::vector<NamedTensor> trainable_;
  bool merged_ = false;
  torch::Tensor saved_weight_, saved_bias_;  // W and b before Merge(), on the weight's device
};

// Builds the adapter named by settings["method"] around a frozen layer, reading the settings
// through methods::Resolve. Throws std::invalid_argument naming the bad field for unknown
// methods or options (listing the method's options). The key
// "init_weights": false skips data-dependent initialisation (SORSA's SVD split: the given
// weight is then already the residual), for loading saved or reference tensors.
std::shared_ptr<Adapter> MakeAdapter(const nlohmann::json& settings, torch::Tensor weight,
                                     torch::Tensor bias, const LinearShape& shape);

// An identity matrix in any dtype (LibTorch 1.13 has no CPU bfloat16 eye kernel).
torch::Tensor Eye(int64_t n, const torch::TensorOptions& options);

// Kaiming-uniform with a = √5 on a [fan_out, fan_in] tensor (nn.Linear's and PEFT's init).
void KaimingUniform(torch::Tensor& t);

}  // namespace sweepd::adapters
