// AdamW (Loshchilov & Hutter 2019) with parameter groups, written out so that its state
// is plain named tensors (checkpointed bitwise) and its arithmetic is PyTorch's.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace sweepd::trainer {

struct ParamGroupSettings {
  double lr = 1e-3;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  AdamW(double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8) : beta1_(beta1), beta2_(beta2), eps_(eps) {}

  // Adds `param` (a leaf requiring grad) under `name` to group `group`.
  void Add(const std::string& name, torch::Tensor param, int group);
  void SetGroup(int group, ParamGroupSettings settings) { groups_[group] = settings; }
  // The settings of the group the param `name` was added to; throws std::out_of_range naming
  // it when no param has that name.
  ParamGroupSettings SettingsOf(const std::string& name) const;

  // One update with every group's lr multiplied by `lr_scale`; params without grad are skipped.
  void Step(double lr_scale);
  // Drops every gradient (the next backward allocates fresh ones); in keep-gradients mode
  // zeroes them in place instead, creating zero tensors where a param has none, so that the
  // gradient tensors stay the same from step to step (what a CUDA graph writes into).
  void ZeroGrad();
  void KeepGradients(bool keep) { keep_gradients_ = keep; }
  int64_t steps() const { return steps_; }

  // The state as named tensors ("NAME.exp_avg", "NAME.exp_avg_sq") and the step count.
  std::map<std::string, torch::Tensor> State() const;
  // Restores State(); throws std::invalid_argument naming a missing or mis-shaped tensor.
  void LoadState(const std::map<std::string, torch::Tensor>& state, int64_t steps);
  const std::vector<torch::Tensor> Params() const;

 private:
  struct Entry {
    std::string name;
    torch::Tensor param, exp_avg, exp_avg_sq;
    int group;
  };
  // The update of entries_[i] for every i in `which`, one fused launch per group and dtype
  // where LibTorch has the kernel and the tensors are on CUDA; false where it did nothing.
  bool FusedStep(const std::vector<size_t>& which, double lr_scale);

  double beta1_, beta2_, eps_;
  int64_t steps_ = 0;
  bool keep_gradients_ = false;
  torch::Tensor device_step_;  // steps_ as a float32 scalar on the params' CUDA device (fused path)
  std::map<int, ParamGroupSettings> groups_;
  std::vector<Entry> entries_;
};

// The learning-rate multiplier at optimizer step `step` (0-based) of `total`: linear warmup
// over ceil(warmup_ratio * total) steps, then cosine to 0, linear to 0, or constant.
double ScheduleMultiplier(const std::string& schedule, double warmup_ratio, int64_t step, int64_t total);

// Scales the gradients of `params` so that their joint L2 norm is at most max_norm; returns
// the norm before clipping.
double ClipGradNorm(const std::vector<torch::Tensor>& params, double max_norm);
// The same clipping without reading the norm on the host (no device sync; PyTorch's
// clip_grad_norm_ arithmetic: scale min(1, max_norm / (norm + 1e-6))); returns the norm
// before clipping as a float32 device scalar (undefined when no param has a gradient).
torch::Tensor ClipGradNormOnDevice(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace sweepd::trainer
