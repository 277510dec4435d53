// The parts of the adapter interface every method shares: loading and saving by PEFT's
// names, and merge-by-overwrite for frozen linear layers.
#include "worker/adapters/adapter.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace sweepd::adapters {

torch::Tensor Adapter::DeltaWeight() {
  torch::NoGradGuard no_grad;
  return EffectiveWeight() - BaseWeight();
}

namespace {

// PEFT keeps "<name>.default.<rest>" in memory and "<name>.<rest>" in saved files.
std::string WithoutAdapterName(std::string name) {
  for (size_t at = name.find(".default"); at != std::string::npos; at = name.find(".default")) {
    name.erase(at, 8);
  }
  return name;
}

}  // namespace

std::vector<std::string> Adapter::Load(const std::map<std::string, torch::Tensor>& tensors) {
  std::map<std::string, torch::Tensor> by_name;
  for (const auto& [name, t] : tensors) by_name[WithoutAdapterName(name)] = t;
  std::vector<NamedTensor> all = Trainable();
  for (NamedTensor& s : State()) all.push_back(std::move(s));
  std::vector<std::string> missing;
  torch::NoGradGuard no_grad;
  for (NamedTensor& nt : all) {
    auto it = by_name.find(nt.name);
    if (it == by_name.end()) it = by_name.find(nt.name + ".weight");
    if (it == by_name.end()) {
      missing.push_back(nt.name);
      continue;
    }
    torch::Tensor src = it->second;
    if (src.numel() != nt.tensor.numel()) {
      std::ostringstream msg;
      msg << Method() << ": tensor '" << it->first << "' has shape " << src.sizes() << ", expected "
          << nt.tensor.sizes();
      throw std::invalid_argument(msg.str());
    }
    nt.tensor.copy_(src.reshape(nt.tensor.sizes()).to(nt.tensor.device(), nt.tensor.scalar_type()));
  }
  AfterLoad();
  return missing;
}

std::map<std::string, torch::Tensor> Adapter::Save() {
  std::map<std::string, torch::Tensor> out;
  for (const NamedTensor& nt : Trainable()) out[nt.name] = nt.tensor.detach();
  for (const NamedTensor& nt : State()) out[nt.name] = nt.tensor.detach();
  return out;
}

FrozenLinearAdapter::FrozenLinearAdapter(std::string method, torch::Tensor weight, torch::Tensor bias,
                                         LinearShape shape)
    : weight_(std::move(weight)), bias_(std::move(bias)), method_(std::move(method)), shape_(std::move(shape)) {
  if (weight_.dim() != 2 || weight_.size(0) != shape_.d_out || weight_.size(1) != shape_.d_in) {
    std::ostringstream msg;
    msg << method_ << ": weight of '" << shape_.name << "' has shape " << weight_.sizes() << ", expected ["
        << shape_.d_out << ", " << shape_.d_in << "]";
    throw std::invalid_argument(msg.str());
  }
  weight_ = weight_.detach();
  if (bias_.defined()) bias_ = bias_.detach();
}

torch::Tensor FrozenLinearAdapter::AddTrainable(const std::string& name, torch::Tensor t, ParamGroup group) {
  std::string module_name = name;
  for (char& c : module_name) {
    if (c == '.') c = '_';
  }
  torch::Tensor p = register_parameter(module_name, std::move(t), /*requires_grad=*/true);
  trainable_.push_back({name, p, group});
  return p;
}

torch::Tensor FrozenLinearAdapter::Forward(const torch::Tensor& x) {
  if (merged_) return torch::nn::functional::linear(x, weight_, bias_);
  return AdaptedForward(x);
}

torch::Tensor FrozenLinearAdapter::EffectiveWeight() { return merged_ ? weight_ : ComputeWeight(); }

torch::Tensor FrozenLinearAdapter::EffectiveBias() { return merged_ ? bias_ : ComputeBias(); }

void FrozenLinearAdapter::Merge() {
  if (merged_) return;
  torch::NoGradGuard no_grad;
  torch::Tensor w = ComputeWeight().to(weight_.scalar_type());
  torch::Tensor b = ComputeBias();
  saved_weight_ = weight_.clone();
  weight_.copy_(w);
  if (bias_.defined()) {
    saved_bias_ = bias_.clone();
    bias_.copy_(b.to(bias_.scalar_type()));
  }
  merged_ = true;
}

void FrozenLinearAdapter::Unmerge() {
  if (!merged_) return;
  torch::NoGradGuard no_grad;
  weight_.copy_(saved_weight_);
  if (bias_.defined()) bias_.copy_(saved_bias_);
  saved_weight_ = torch::Tensor();
  saved_bias_ = torch::Tensor();
  merged_ = false;
}

torch::Tensor Eye(int64_t n, const torch::TensorOptions& options) {
  return torch::eye(n, options.dtype(torch::kFloat32)).to(options.dtype());
}

void KaimingUniform(torch::Tensor& t) {
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(t.size(1)));
  t.uniform_(-bound, bound);
}

}  // namespace sweepd::adapters
