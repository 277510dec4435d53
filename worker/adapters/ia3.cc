// IA3 (Liu et al. 2022) as HF PEFT's ia3.Linear: y = (x Wᵀ + b) ⊙ l with ia3_l [d_out, 1], or for
// feed-forward modules y = (x ⊙ l) Wᵀ + b with ia3_l [1, d_in]; l starts at ones. Feed-forward is
// settings "feedforward" when given, else the layer's shape (down_proj for Llama, PEFT's default).
#include "worker/adapters/methods.h"

namespace sweepd::adapters {
namespace {

class Ia3Adapter : public FrozenLinearAdapter {
 public:
  Ia3Adapter(const AdapterOptions& o, torch::Tensor weight, torch::Tensor bias, LinearShape shape)
      : FrozenLinearAdapter("ia3", std::move(weight), std::move(bias), std::move(shape)) {
    feedforward_ = o.Bool("feedforward", Shape().feed_forward);
    l_ = AddTrainable("ia3_l", feedforward_ ? torch::ones({1, Shape().d_in}, Options())
                                            : torch::ones({Shape().d_out, 1}, Options()));
  }

  std::vector<NamedTensor> Trainable() override { return TrainableList(); }
  int64_t ParameterCount() const override { return feedforward_ ? Shape().d_in : Shape().d_out; }
  bool CudaGraphSafe() const override { return true; }

 protected:
  torch::Tensor AdaptedForward(const torch::Tensor& x) override {
    if (feedforward_) return torch::nn::functional::linear(x * l_.view({-1}), weight_, bias_);
    return torch::nn::functional::linear(x, weight_, bias_) * l_.view({-1});
  }
  torch::Tensor ComputeWeight() override { return weight_ * l_; }  // [d_out,1] rows or [1,d_in] columns
  torch::Tensor ComputeBias() override {
    if (feedforward_ || !bias_.defined()) return bias_;
    return bias_ * l_.view({-1});
  }

 private:
  bool feedforward_ = false;
  torch::Tensor l_;
};

}  // namespace

std::shared_ptr<Adapter> MakeIa3(const std::string&, const AdapterOptions& options, torch::Tensor weight,
                                 torch::Tensor bias, const LinearShape& shape) {
  return std::make_shared<Ia3Adapter>(options, std::move(weight), std::move(bias), shape);
}

}  // namespace sweepd::adapters
