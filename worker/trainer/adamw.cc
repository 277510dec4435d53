// AdamW, the schedule and gradient clipping, in PyTorch's arithmetic order.
#include "worker/trainer/adamw.h"

#include <cmath>
#include <map>
#include <stdexcept>
#include <utility>

#include "worker/compat.h"
#include "worker/failures.h"

namespace sweepd::trainer {

void AdamW::Add(const std::string& name, torch::Tensor param, int group) {
  Entry e{name, param, torch::zeros_like(param), torch::zeros_like(param), group};
  entries_.push_back(std::move(e));
  if (!groups_.count(group)) groups_[group] = ParamGroupSettings{};
}

ParamGroupSettings AdamW::SettingsOf(const std::string& name) const {
  for (const Entry& e : entries_) {
    if (e.name == name) return groups_.at(e.group);
  }
  throw std::out_of_range("the optimizer has no param '" + name + "'");
}

void AdamW::Step(double lr_scale) {
  torch::NoGradGuard no_grad;
  ++steps_;
  std::vector<size_t> with_grad;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].param.grad().defined()) with_grad.push_back(i);
  }
  if (FusedStep(with_grad, lr_scale)) return;
  const double bias1 = 1 - std::pow(beta1_, static_cast<double>(steps_));
  const double bias2 = 1 - std::pow(beta2_, static_cast<double>(steps_));
  for (size_t i : with_grad) {
    Entry& e = entries_[i];
    const torch::Tensor& grad = e.param.grad();
    const ParamGroupSettings& g = groups_.at(e.group);
    const double lr = g.lr * lr_scale;
    e.param.mul_(1 - lr * g.weight_decay);
    e.exp_avg.lerp_(grad, 1 - beta1_);
    e.exp_avg_sq.mul_(beta2_).addcmul_(grad, grad, 1 - beta2_);
    auto denom = (e.exp_avg_sq.sqrt() / std::sqrt(bias2)).add_(eps_);
    e.param.addcdiv_(e.exp_avg, denom, -lr / bias1);
  }
}

bool AdamW::FusedStep(const std::vector<size_t>& which, double lr_scale) {
  if (which.empty()) return false;
  const torch::Device device = entries_[which.front()].param.device();
  for (size_t i : which) {
    // The fused kernel wants one CUDA device and dense tensors of one layout.
    if (entries_[i].param.device() != device || !entries_[i].param.grad().is_contiguous()) return false;
  }
  if (!device.is_cuda()) return false;
  if (!device_step_.defined() || device_step_.device() != device) {
    device_step_ = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
  }
  device_step_.fill_(static_cast<double>(steps_));  // a host scalar: no sync
  // One launch per (group, dtype): the kernel takes one lr and one dtype.
  std::map<std::pair<int, torch::ScalarType>, std::vector<size_t>> batches;
  for (size_t i : which) batches[{entries_[i].group, entries_[i].param.scalar_type()}].push_back(i);
  for (const auto& [key, members] : batches) {
    const ParamGroupSettings& g = groups_.at(key.first);
    std::vector<torch::Tensor> params, grads, avgs, sqs, steps;
    for (size_t i : members) {
      params.push_back(entries_[i].param);
      grads.push_back(entries_[i].param.grad());
      avgs.push_back(entries_[i].exp_avg);
      sqs.push_back(entries_[i].exp_avg_sq);
      steps.push_back(device_step_);  // read-only in the kernel: one shared count
    }
    if (!compat::FusedAdamW(params, grads, avgs, sqs, steps, g.lr * lr_scale, beta1_, beta2_, g.weight_decay,
                            eps_)) {
      return false;  // only before any launch: availability is the same for every batch
    }
  }
  return true;
}

void AdamW::ZeroGrad() {
  if (!keep_gradients_) {
    for (Entry& e : entries_) {
      if (e.param.grad().defined()) e.param.mutable_grad() = torch::Tensor();
    }
    return;
  }
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (Entry& e : entries_) {
    if (e.param.grad().defined()) {
      grads.push_back(e.param.grad());
    } else {
      e.param.mutable_grad() = torch::zeros_like(e.param);
    }
  }
  compat::ZeroInPlace(grads);
}

std::map<std::string, torch::Tensor> AdamW::State() const {
  std::map<std::string, torch::Tensor> out;
  for (const Entry& e : entries_) {
    out[e.name + ".exp_avg"] = e.exp_avg;
    out[e.name + ".exp_avg_sq"] = e.exp_avg_sq;
  }
  return out;
}

void AdamW::LoadState(const std::map<std::string, torch::Tensor>& state, int64_t steps) {
  torch::NoGradGuard no_grad;
  for (Entry& e : entries_) {
    for (auto [suffix, target] : {std::pair{".exp_avg", &e.exp_avg}, std::pair{".exp_avg_sq", &e.exp_avg_sq}}) {
      auto it = state.find(e.name + suffix);
      if (it == state.end()) throw std::invalid_argument("optimizer state has no tensor '" + e.name + suffix + "'");
      if (it->second.sizes() != target->sizes()) {
        throw std::invalid_argument("optimizer state tensor '" + e.name + suffix + "' has the wrong shape");
      }
      target->copy_(it->second);
    }
  }
  steps_ = steps;
}

const std::vector<torch::Tensor> AdamW::Params() const {
  std::vector<torch::Tensor> out;
  for (const Entry& e : entries_) out.push_back(e.param);
  return out;
}

double ScheduleMultiplier(const std::string& schedule, double warmup_ratio, int64_t step, int64_t total) {
  const int64_t warmup = static_cast<int64_t>(std::ceil(warmup_ratio * static_cast<double>(total)));
  if (step < warmup) return static_cast<double>(step + 1) / static_cast<double>(warmup + 1);
  if (schedule == "constant") return 1.0;
  const double span = static_cast<double>(std::max<int64_t>(1, total - warmup));
  const double progress = std::min(1.0, static_cast<double>(step - warmup) / span);
  if (schedule == "linear") return 1.0 - progress;
  if (schedule == "cosine") return 0.5 * (1.0 + std::cos(M_PI * progress));
  throw InvalidInput("train.schedule must be cosine, linear or constant, not '" + schedule + "'");
}

double ClipGradNorm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params) {
    if (p.grad().defined()) norms.push_back(p.grad().to(torch::kFloat32).norm());
  }
  if (norms.empty()) return 0.0;
  const double total = torch::stack(norms).norm().item<double>();
  if (max_norm > 0 && total > max_norm) {
    const double scale = max_norm / (total + 1e-6);
    for (const auto& p : params) {
      if (p.grad().defined()) p.grad().mul_(scale);
    }
  }
  return total;
}

torch::Tensor ClipGradNormOnDevice(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return {};
  std::vector<torch::Tensor> norms = at::_foreach_norm(grads);
  for (auto& n : norms) n = n.to(torch::kFloat32);
  torch::Tensor total = torch::stack(norms).norm();
  if (max_norm > 0) {
    compat::MultiplyInPlace(grads, torch::clamp_max(max_norm / (total + 1e-6), 1.0));
  }
  return total;
}

}  // namespace sweepd::trainer
