// The base layer of every adaptable projection.
#include "worker/models/adaptable_linear.h"

namespace sweepd::models {

AdaptableLinearImpl::AdaptableLinearImpl(int64_t d_in, int64_t d_out, bool bias) {
  weight_ = register_parameter("weight", torch::empty({d_out, d_in}));
  if (bias) bias_ = register_parameter("bias", torch::zeros({d_out}));
}

torch::Tensor AdaptableLinearImpl::forward(const torch::Tensor& x) {
  if (adapter_) return adapter_->Forward(x);
  return torch::nn::functional::linear(x, weight_, bias_);
}

}  // namespace sweepd::models
