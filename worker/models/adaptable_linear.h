// A frozen linear layer y = x Wᵀ + b that a PEFT adapter can take over. The base weight
// keeps the checkpoint's name ("...q_proj.weight"); the adapter owns its own tensors.
#pragma once

#include <memory>

#include <torch/torch.h>

#include "worker/adapters/adapter.h"

namespace sweepd::models {

class AdaptableLinearImpl : public torch::nn::Module {
 public:
  AdaptableLinearImpl(int64_t d_in, int64_t d_out, bool bias);

  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor& weight() { return weight_; }
  torch::Tensor& bias() { return bias_; }  // undefined without bias
  // Routes forward through `adapter` (built around weight() and bias()); null detaches.
  void Attach(std::shared_ptr<adapters::Adapter> adapter) { adapter_ = std::move(adapter); }
  const std::shared_ptr<adapters::Adapter>& adapter() const { return adapter_; }

 private:
  torch::Tensor weight_;
  torch::Tensor bias_;
  std::shared_ptr<adapters::Adapter> adapter_;  // shared with the trainer's adapter list
};
TORCH_MODULE(AdaptableLinear);

}  // namespace sweepd::models
