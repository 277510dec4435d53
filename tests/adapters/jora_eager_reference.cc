// The JORA adapter as worker/adapters/jora.cc computed it before its pair slots got a fixed
// capacity (commit e778a20): active pairs as the prefix of pairs_*, sized on the host by the
// active counts, one Givens scatter per side over just those pairs. Kept only as the reference
// that jora_selection_test.cc trains the current adapter against, step by step; the maths is
// the seed design's (docs/methods.md, JORA), unchanged but for the name and the Diagnostics
// that the test does not read.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tests/adapters/jora_eager_reference.h"

#include "common/methods/registry.h"
#include "worker/adapters/rotations.h"

namespace sweepd::adapters {
namespace {

// rotations.cc's ApplyGivens of that commit: two gathers, one out-of-place index_copy.
torch::Tensor EagerApplyGivens(const torch::Tensor& x, const torch::Tensor& pairs, const torch::Tensor& c,
                               const torch::Tensor& s) {
  if (pairs.size(0) == 0) return x;
  const int64_t last = x.dim() - 1;
  torch::Tensor i = pairs.select(1, 0), j = pairs.select(1, 1);
  torch::Tensor xi = x.index_select(last, i), xj = x.index_select(last, j);
  torch::Tensor ci = c.to(x.scalar_type()), si = s.to(x.scalar_type());
  return x.index_copy(last, torch::cat({i, j}), torch::cat({ci * xi + si * xj, ci * xj - si * xi}, last));
}

class EagerJora : public FrozenLinearAdapter {
 public:
  EagerJora(const AdapterOptions& o, torch::Tensor weight, torch::Tensor bias, LinearShape shape)
      : FrozenLinearAdapter("jora", std::move(weight), std::move(bias), std::move(shape)), settings_(o.json()) {
    settings_["method"] = "jora";
    Result<int64_t> count = CountTrainableParameters(settings_, Shape());
    if (!count.ok()) throw std::invalid_argument(count.status().message());
    count_ = *count;
    const int64_t d_in = Shape().d_in, d_out = Shape().d_out;
    s_l_ = o.Int("S_L");
    s_r_ = o.Int("S_R");
    k_ = o.Int("k");
    cayley_ = o.Choice("rotation_param") == "cayley";
    max_angle_ = o.Number("max_angle");
    selection_ = o.Choice("selection");
    ema_beta_ = o.Number("ema_beta");
    update_interval_ = std::max<int64_t>(1, o.Int("update_interval"));
    warmup_steps_ = o.Int("warmup_steps");
    warmup_ratio_ = o.Number("warmup_ratio");
    high_low_ = o.Choice("pairing_strategy") == "high_low";
    use_gumbel_ = o.Bool("use_gumbel");
    gumbel_tau_ = o.Number("gumbel_tau");
    const std::string sided = o.Choice("single_sided");
    use_left_ = s_l_ > 0 && sided != "right";
    use_right_ = s_r_ > 0 && sided != "left";
    core_ = o.Choice("core");
    magnitude_ = o.Choice("magnitude");
    scope_output_ = o.Choice("magnitude_scope") == "output";
    oer_temperature_ = o.Number("oer_temperature");
    ecd_temperature_ = o.Number("ecd_temperature");
    ecd_alpha_ = o.Number("ecd_alpha");
    eps_ = o.Number("eps");
    const bool zero_core = o.Bool("zero_init_core");
    tanh_clip_ = o.Bool("tanh_clip");
    const bool init = o.Bool("init_weights");
    const double theta_std = o.Number("theta_init_std");

    if (use_left_) theta_l_ = AddTrainable("theta_L", torch::randn({s_l_}, Options()) * theta_std, ParamGroup::kTheta);
    if (use_right_) theta_r_ = AddTrainable("theta_R", torch::randn({s_r_}, Options()) * theta_std, ParamGroup::kTheta);
    const int64_t m = std::min(d_in, d_out);
    const double core_scale = zero_core ? 0.0 : 1.0;
    if (core_ == "diag") {
      diag_ = AddTrainable("core.diag_params", torch::randn({m}, Options()) * (0.01 * core_scale), ParamGroup::kCore);
    } else if (core_ == "block") {
      block_ = o.Int("block_size");
      const int64_t nb = m / block_, rem = m % block_;
      if (nb > 0) {
        blocks_ = AddTrainable("core.blocks", torch::randn({nb, block_, block_}, Options()) * (0.1 * core_scale),
                               ParamGroup::kCore);
      }
      if (rem > 0) {
        diag_ = AddTrainable("core.diag_remainder", torch::randn({rem}, Options()) * (0.1 * core_scale),
                             ParamGroup::kCore);
      }
    } else if (core_ == "lowrank") {
      const int64_t r = o.Int("lowrank_r");
      lowrank_scale_ = o.Number("lowrank_alpha", static_cast<double>(r)) / static_cast<double>(r);
      low_a_ = AddTrainable("core.A", torch::randn({d_out, r}, Options()) * (0.1 * core_scale), ParamGroup::kCore);
      low_b_ = AddTrainable("core.B", torch::randn({d_in, r}, Options()) * 0.1, ParamGroup::kCore);
    } else {
      delta_ = AddTrainable("core.delta", torch::zeros({2 * k_}, Options()), ParamGroup::kCore);
    }

    auto long_opts = Options().dtype(torch::kLong);
    auto f32 = Options().dtype(torch::kFloat32);
    const auto norm_type = weight_.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    pairs_l_ = register_buffer("pairs_L", torch::full({s_l_, 2}, -1, long_opts));
    pairs_r_ = register_buffer("pairs_R", torch::full({s_r_, 2}, -1, long_opts));
    num_l_ = register_buffer("num_pairs_L", torch::zeros({1}, long_opts));
    num_r_ = register_buffer("num_pairs_R", torch::zeros({1}, long_opts));
    row_ema_ = register_buffer("grad_row_ema", torch::zeros({d_out}, f32));
    col_ema_ = register_buffer("grad_col_ema", torch::zeros({d_in}, f32));
    support_ = register_buffer("support_indices", torch::zeros({2 * k_}, long_opts));
    support_size_ = register_buffer("active_support_size", torch::zeros({1}, long_opts));
    {
      torch::NoGradGuard no_grad;
      torch::Tensor norms = weight_.to(norm_type).norm(2, 1);
      base_row_norms_ = register_buffer("base_row_norms", norms);
      total_energy_ = register_buffer("total_energy", norms.to(torch::kFloat32).pow(2).sum().view({1}));
    }
    if (magnitude_ != "none") {
      torch::Tensor z = torch::zeros({d_out}, Options());
      if (magnitude_ == "oer_softmax") {
        torch::NoGradGuard no_grad;
        z = (base_row_norms_.pow(2).clamp_min(1e-30).log() * oer_temperature_).to(weight_.scalar_type());
      }
      log_mag_ = AddTrainable("ecd_log_mag", z);
    }
    if (init) {
      torch::NoGradGuard no_grad;
      WritePairs(pairs_l_, num_l_, RandomPairs(d_out, s_l_), &n_l_);
      WritePairs(pairs_r_, num_r_, RandomPairs(d_in, s_r_), &n_r_);
      RefreshSupport();
    }
  }

  std::vector<NamedTensor> Trainable() override { return TrainableList(); }
  std::vector<NamedTensor> State() override {
    return {{"pairs_L", pairs_l_},          {"pairs_R", pairs_r_},
            {"num_pairs_L", num_l_},        {"num_pairs_R", num_r_},
            {"base_row_norms", base_row_norms_}, {"total_energy", total_energy_},
            {"grad_row_ema", row_ema_},     {"grad_col_ema", col_ema_},
            {"core.support_indices", support_}, {"core.active_support_size", support_size_}};
  }
  int64_t ParameterCount() const override { return count_; }
  // Pair selection changes the active counts (host integers that size the forward).
  bool CudaGraphSafe() const override { return selection_ == "none"; }

  void AfterLoad() override {
    n_l_ = num_l_.item<int64_t>();
    n_r_ = num_r_.item<int64_t>();
    n_support_ = support_size_.item<int64_t>();
  }

  void AfterOptimizerStep(int64_t step, int64_t total_steps) override {
    torch::NoGradGuard no_grad;
    if (max_angle_ > 0) {
      if (theta_l_.defined()) theta_l_.clamp_(-max_angle_, max_angle_);
      if (theta_r_.defined()) theta_r_.clamp_(-max_angle_, max_angle_);
    }
    if (selection_ == "none" || step % update_interval_ != 0) return;
    int64_t ws = warmup_steps_;
    if (warmup_ratio_ > 0 && total_steps > 0) ws = std::max(ws, static_cast<int64_t>(total_steps * warmup_ratio_));
    const double ramp = ws > 0 ? std::min(1.0, static_cast<double>(step) / static_cast<double>(ws)) : 1.0;
    const int64_t allowed = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(k_) * ramp));
    const int64_t wl = use_left_ ? s_l_ : 0, wr = use_right_ ? s_r_ : 0;
    if (wl + wr == 0) return;
    int64_t want_l = static_cast<int64_t>(std::llround(static_cast<double>(allowed * wl) / static_cast<double>(wl + wr)));
    int64_t want_r = allowed - want_l;
    want_l = std::min({want_l, wl, Shape().d_out / 2});
    want_r = std::min({want_r, wr, Shape().d_in / 2});
    if (selection_ == "random") {
      if (use_left_) WritePairs(pairs_l_, num_l_, RandomPairs(Shape().d_out, want_l), &n_l_);
      if (use_right_) WritePairs(pairs_r_, num_r_, RandomPairs(Shape().d_in, want_r), &n_r_);
    } else {
      if (use_left_) WritePairs(pairs_l_, num_l_, TopPairs(row_ema_, want_l), &n_l_);
      if (use_right_) WritePairs(pairs_r_, num_r_, TopPairs(col_ema_, want_r), &n_r_);
    }
    RefreshSupport();
  }

 protected:
  torch::Tensor AdaptedForward(const torch::Tensor& x) override {
    if (is_training() && selection_ == "topk_ema") {
      torch::NoGradGuard no_grad;
      torch::Tensor x2 = x.detach().reshape({-1, Shape().d_in}).to(torch::kFloat32).pow(2).mean(0);
      col_ema_.mul_(ema_beta_).add_(x2, 1 - ema_beta_);
    }
    torch::Tensor base = torch::nn::functional::linear(x, weight_, bias_);
    torch::Tensor y;
    if (magnitude_ == "none") {
      y = base + Delta(x);
    } else if (scope_output_) {
      y = (base + Delta(x)) * Scale().to(x.scalar_type());
    } else {
      y = torch::addcmul(base, Delta(x), Scale().to(x.scalar_type()));
    }
    if (is_training() && selection_ == "topk_ema" && y.requires_grad()) {
      torch::Tensor ema = row_ema_;
      const double beta = ema_beta_;
      const int64_t d_out = Shape().d_out;
      y.register_hook([ema, beta, d_out](const torch::Tensor& g) {
        torch::NoGradGuard no_grad;
        ema.mul_(beta).add_(g.detach().reshape({-1, d_out}).to(torch::kFloat32).pow(2).mean(0), 1 - beta);
      });
    }
    return y;
  }

  torch::Tensor ComputeWeight() override {
    RequireLinear();
    // δ is linear: its matrix is δ applied to the identity's rows, transposed.
    torch::Tensor dw = Delta(Eye(Shape().d_in, Options())).t();
    if (magnitude_ == "none") return weight_ + dw;
    torch::Tensor scale = Scale().to(weight_.scalar_type()).unsqueeze(1);
    return scope_output_ ? (weight_ + dw) * scale : weight_ + dw * scale;
  }
  torch::Tensor ComputeBias() override {
    if (!bias_.defined() || magnitude_ == "none" || !scope_output_) return bias_;
    return bias_ * Scale().to(bias_.scalar_type());
  }

 public:
  bool IsLinearInInput() const override { return !tanh_clip_; }

 private:
  void RequireLinear() const {
    if (tanh_clip_) {
      throw std::logic_error("jora with tanh_clip is not linear in x: it has no exact merge or ΔW; "
                             "train with tanh_clip=false to merge");
    }
  }

  std::pair<torch::Tensor, torch::Tensor> CosSin(const torch::Tensor& theta) const {
    torch::Tensor phi = cayley_ ? 2.0 * torch::atan(0.5 * theta) : theta;
    return {torch::cos(phi), torch::sin(phi)};
  }

  torch::Tensor Rotate(const torch::Tensor& x, const torch::Tensor& theta, const torch::Tensor& pairs, int64_t n,
                       bool transpose) const {
    if (!theta.defined() || n <= 0) return x;
    auto [c, s] = CosSin(theta.narrow(0, 0, n));
    return EagerApplyGivens(x, pairs.narrow(0, 0, n), c, transpose ? -s : s);
  }

  torch::Tensor Core(const torch::Tensor& x) {
    const int64_t d_out = Shape().d_out;
    const int64_t last = x.dim() - 1;
    if (core_ == "lowrank") return torch::matmul(torch::matmul(x, low_b_), low_a_.t()) * lowrank_scale_;
    if (core_ == "selective_diag") {
      if (n_support_ <= 0) return torch::zeros_like(x);
      torch::Tensor u = support_.narrow(0, 0, n_support_);
      torch::Tensor scaled = x.index_select(last, u) * (1.0 + delta_.narrow(0, 0, n_support_));
      return torch::zeros_like(x).index_copy(last, u, scaled);
    }
    std::vector<torch::Tensor> parts;
    int64_t used = 0;
    if (blocks_.defined()) {
      const int64_t span = blocks_.size(0) * block_;
      parts.push_back(ApplyBlockDiagonal(x.narrow(last, 0, span), blocks_.transpose(1, 2)));
      used = span;
    }
    if (diag_.defined()) {
      parts.push_back(x.narrow(last, used, diag_.size(0)) * diag_);
      used += diag_.size(0);
    }
    torch::Tensor y = parts.size() == 1 ? parts[0] : torch::cat(parts, last);
    return used < d_out ? torch::constant_pad_nd(y, {0, d_out - used}) : y;
  }

  torch::Tensor Delta(const torch::Tensor& x) {
    torch::Tensor xr = Rotate(x, theta_r_, pairs_r_, n_r_, /*transpose=*/false);
    torch::Tensor y = Rotate(Core(xr), theta_l_, pairs_l_, n_l_, /*transpose=*/true);
    if (core_ == "selective_diag" && n_support_ > 0) {
      // The public code subtracts in float32 (an upcast for bfloat16, where ours rounds the same
      // way); for float64 activations that cast would round δ to float32 (about 1e-7) and break
      // the exact merge, so the subtraction stays in the activations' dtype.
      const int64_t last = x.dim() - 1;
      torch::Tensor u = support_.narrow(0, 0, n_support_);
      y = y - torch::zeros_like(x).index_copy(last, u, x.index_select(last, u));
    }
    return tanh_clip_ ? torch::tanh(y) : y;
  }

  // The magnitude's row scale, as the public compute_ecd_scale / compute_oer_scale_softmax
  // (clamped target energies, min-norm guard, renormalisation), in float32 as there (its
  // base_row_norms and total_energy are float32), without the public code's host syncs.
  // The one step there that is not float32 is the min-norm guard: it is Python float
  // arithmetic, max(100·eps, 1e-4·sqrt(E/d_out)) in float64, rounded to float32 only where it
  // clamps the norms. It is computed so here; in float32 it lands one or two ulps away, and a
  // row whose norm the guard replaces (a zero row) then gets a scale about 1e-7 off.
  torch::Tensor Scale() {
    const auto acc = torch::kFloat32;  // the public code keeps norms and energy in float32
    torch::Tensor norms = base_row_norms_.to(acc);
    torch::Tensor e = total_energy_.squeeze().to(acc);
    if (magnitude_ == "ecd_tanh") {
      // tanh(z) is taken twice, as the public code does, so that float32 gradients agree bit for bit.
      torch::Tensor z = log_mag_.to(acc) / std::max(ecd_temperature_, eps_);
      torch::Tensor current = (norms * (1.0 + ecd_alpha_ * torch::tanh(z))).pow(2).sum();
      return torch::sqrt(e / (current + eps_)) * (1.0 + ecd_alpha_ * torch::tanh(z));
    }
    torch::Tensor p = torch::softmax(log_mag_.to(acc) / std::max(oer_temperature_, eps_), 0);
    torch::Tensor target = torch::sqrt(torch::clamp_min(e * p, eps_));
    torch::Tensor e64 = total_energy_.squeeze().to(torch::kFloat64);
    torch::Tensor min_norm =
        torch::clamp_min(torch::sqrt(e64 / static_cast<double>(norms.numel())) * 1e-4, eps_ * 100).to(acc);
    torch::Tensor raw = target / torch::max(norms, min_norm);
    torch::Tensor actual = (raw * norms).pow(2).sum();
    return raw * torch::sqrt(actual.reciprocal() * e);
  }

  torch::Tensor RandomPairs(int64_t features, int64_t n) const {
    n = std::min(n, features / 2);
    if (n <= 0) return torch::empty({0, 2}, Options().dtype(torch::kLong));
    return torch::randperm(features, Options().dtype(torch::kLong)).narrow(0, 0, 2 * n).view({n, 2});
  }

  torch::Tensor TopPairs(const torch::Tensor& energy_in, int64_t n) const {
    n = std::min(n, energy_in.size(0) / 2);
    if (n <= 0) return torch::empty({0, 2}, Options().dtype(torch::kLong));
    torch::Tensor energy = energy_in;
    if (use_gumbel_) {
      torch::Tensor u = torch::rand_like(energy);
      energy = energy / std::max(gumbel_tau_, 1e-6) - torch::log(-torch::log(u + 1e-8) + 1e-8);
    }
    torch::Tensor top = std::get<1>(torch::topk(energy, 2 * n, 0, /*largest=*/true, /*sorted=*/true));
    if (!high_low_) return top.view({n, 2});
    return torch::stack({top.narrow(0, 0, n), top.narrow(0, n, n).flip(0)}, 1);
  }

  // Writes pairs into the buffer's prefix (−1 beyond) and the counts on device and host.
  static void WritePairs(torch::Tensor& buffer, torch::Tensor& counter, const torch::Tensor& pairs, int64_t* host) {
    const int64_t n = std::min<int64_t>(pairs.size(0), buffer.size(0));
    buffer.fill_(-1);
    if (n > 0) buffer.narrow(0, 0, n).copy_(pairs.narrow(0, 0, n));
    counter.fill_(n);
    *host = n;
  }

  void RefreshSupport() {
    if (core_ != "selective_diag") return;
    const int64_t n = std::min(n_r_, k_);
    support_.zero_();
    if (n > 0) support_.narrow(0, 0, 2 * n).copy_(pairs_r_.narrow(0, 0, n).reshape({-1}));
    support_size_.fill_(2 * n);
    n_support_ = 2 * n;
  }

  nlohmann::json settings_;
  int64_t count_ = 0, s_l_ = 0, s_r_ = 0, k_ = 0, block_ = 4;
  int64_t update_interval_ = 1, warmup_steps_ = 0;
  int64_t n_l_ = 0, n_r_ = 0, n_support_ = 0;  // host copies of the active counts
  bool cayley_ = true, high_low_ = false, use_gumbel_ = false, use_left_ = true, use_right_ = true;
  bool scope_output_ = false, tanh_clip_ = false;
  double max_angle_ = 0, ema_beta_ = 0.98, warmup_ratio_ = 0, gumbel_tau_ = 1;
  double oer_temperature_ = 1, ecd_temperature_ = 1, ecd_alpha_ = 0.5, eps_ = 1e-8, lowrank_scale_ = 1;
  std::string selection_, core_, magnitude_;
  torch::Tensor theta_l_, theta_r_, diag_, blocks_, low_a_, low_b_, delta_, log_mag_;
  torch::Tensor pairs_l_, pairs_r_, num_l_, num_r_, row_ema_, col_ema_, support_, support_size_;
  torch::Tensor base_row_norms_, total_energy_;
};

}  // namespace

std::shared_ptr<Adapter> MakeEagerJoraReference(const nlohmann::json& settings, torch::Tensor weight,
                                                torch::Tensor bias, const LinearShape& shape) {
  Result<methods::MethodSettings> resolved = methods::Resolve(settings);
  if (!resolved.ok()) throw std::invalid_argument(resolved.status().message());
  return std::make_shared<EagerJora>(AdapterOptions(*resolved), std::move(weight), std::move(bias), shape);
}

}  // namespace sweepd::adapters
