// AdamW, the schedule and gradient clipping, in PyTorch's arithmetic order.
#include "worker/trainer/adamw.h"

#include <cmath>
#include <stdexcept>

namespace sweepd::trainer {

void AdamW::Add(const std::string& name, torch::Tensor param, int group) {
  Entry e{name, param, torch::zeros_like(param), torch::zeros_like(param), group};
  entries_.push_back(std::move(e));
  if (!groups_.count(group)) groups_[group] = ParamGroupSettings{};
}

void AdamW::Step(double lr_scale) {
  torch::NoGradGuard no_grad;
  ++steps_;
  const double bias1 = 1 - std::pow(beta1_, static_cast<double>(steps_));
  const double bias2 = 1 - std::pow(beta2_, static_cast<double>(steps_));
  for (Entry& e : entries_) {
    const torch::Tensor& grad = e.param.grad();
    if (!grad.defined()) continue;
    const ParamGroupSettings& g = groups_.at(e.group);
    const double lr = g.lr * lr_scale;
    e.param.mul_(1 - lr * g.weight_decay);
    e.exp_avg.lerp_(grad, 1 - beta1_);
    e.exp_avg_sq.mul_(beta2_).addcmul_(grad, grad, 1 - beta2_);
    auto denom = (e.exp_avg_sq.sqrt() / std::sqrt(bias2)).add_(eps_);
    e.param.addcdiv_(e.exp_avg, denom, -lr / bias1);
  }
}

void AdamW::ZeroGrad() {
  for (Entry& e : entries_) {
    if (e.param.grad().defined()) e.param.mutable_grad() = torch::Tensor();
  }
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
  throw std::invalid_argument("train.schedule must be cosine, linear or constant, not '" + schedule + "'");
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

}  // namespace sweepd::trainer
