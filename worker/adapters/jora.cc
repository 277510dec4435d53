// JORA (the seed design; checked against the public implementation, Lucas-Jin-Qh/JORA
// src/peft/tuners/jora, files jora_*.safetensors). Per layer: Givens rotations on disjoint
// coordinate pairs of the input (R_R, angles theta_R) and output (R_Lᵀ, theta_L, applied with −θ),
// a core mapping d_in → d_out (diag | block | lowrank | selective_diag), and an optional
// row magnitude (ecd_tanh | oer_softmax):  δ(x) = R_Lᵀ core(R_R x)  (selective_diag:
// R_Lᵀ D_sel R_R x − P_U x),  y = x Wᵀ + b + scale ⊙ δ(x).
// Choices where docs/methods.md leaves details open, following the public implementation:
//  - φ = θ (angle) or 2·atan(θ/2) (cayley); pairs are disjoint, so the order within a side is moot.
//  - theta ~ N(0, theta_init_std² = 0.02²); diag core 0.01·N(0,1), block 0.1·N, lowrank A, B 0.1·N
//    (zero_init_core: zeros, lowrank keeps B random), selective_diag delta zeros; magnitude logits:
//    OER T·log‖W_i‖² (scale 1 at init, docs/methods.md), ECD zeros. The magnitude maths runs in
//    float32, as the public code's (its base_row_norms and total_energy are float32): the
//    jora_* files reproduce to 1e-10 only so; base_row_norms/total_energy are saved buffers.
//  - tanh_clip (δ ← tanh(δ)) is optional and off by default: docs/methods.md's δ has no clip, the
//    jora_* reference files have none (some versions of the public layer clip when
//    zero_init_core is false), and a clipped δ has no exact merge.
//  - Selection: EMAs (ema_beta) of mean x² per input feature (forward, training) and of the mean
//    squared output gradient per output feature (backward hook); every update_interval steps the
//    allowed pairs max(1, ⌊k · warmup ramp⌋) are split between the sides as S_L : S_R, and each side
//    is rebuilt from its top-2n features, paired consecutive (1st–2nd, …) or high_low (highest with
//    lowest of the chosen); `random` draws disjoint pairs, `none` keeps the initial pairs. At init
//    every slot holds a random disjoint pair (the public code starts with S/4 active; we start all
//    S so that no angle is idle). selective_diag's support U is the active right pairs' indices
//    (at most 2k), refreshed with them.
//  - max_angle > 0 clamps the angles after each optimizer step (off by default).
//  - magnitude_scope: "delta" (docs/methods.md: scale ⊙ δ) or "output" (scale ⊙ (x Wᵀ + b + δ)).
// Fixed-capacity slots (so that a step keeps its shapes and its kernels across selection updates
// and replays inside one CUDA graph, never re-captured): each side rotates min(S, d/2) slots,
// the most pairs it can ever have active (before the first update all S slots are active),
// every slot holding a pair, all 2·capacity features distinct: the active pairs first, then
// spare features not in any active pair. A slot's mask (live_*) gives an idle slot c = 1,
// s = 0, which leaves its two coordinates exactly as they were and its angle without gradient,
// so the masked slots compute what the active pairs alone compute. selective_diag's support
// has min(2k, d_in) slots likewise. The selection (EMAs, top-k, the update every
// update_interval steps) stays on the device: the counts it writes are host integers known
// from the step alone, the indices are device tensors the forward consumes by index ops.
// pairs_* / num_pairs_* (−1 beyond the count) and the support stay the checkpoint's state.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "worker/adapters/methods.h"
#include "worker/adapters/rotations.h"

namespace sweepd::adapters {
namespace {

// The mean of v² over the rows of v [..., features], per feature, in float32 (the selection's
// energies). Half and bfloat16 activations go through one float32-accumulating norm reduction
// that squares as it reads, instead of a float32 copy, its square and a mean (three passes over
// a float32 tensor twice the activations' size); the energies then differ from the latter by
// float32 rounding (about 1e-7 relative), which changes a selection only in such a near-tie.
torch::Tensor MeanSquare(const torch::Tensor& v, int64_t features) {
  torch::Tensor rows = v.detach().reshape({-1, features});
  if (rows.scalar_type() == torch::kBFloat16 || rows.scalar_type() == torch::kHalf) {
    return torch::linalg_vector_norm(rows, 2, std::vector<int64_t>{0}, false, torch::kFloat32)
        .square_()
        .div_(static_cast<double>(rows.size(0)));
  }
  return rows.to(torch::kFloat32).pow(2).mean(0);
}

class JoraAdapter : public FrozenLinearAdapter {
 public:
  JoraAdapter(const AdapterOptions& o, torch::Tensor weight, torch::Tensor bias, LinearShape shape)
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
    cap_l_ = std::min(s_l_, d_out / 2);
    cap_r_ = std::min(s_r_, d_in / 2);
    cap_u_ = core_ == "selective_diag" ? std::min(2 * k_, d_in) : 0;
    auto bool_opts = Options().dtype(torch::kBool);
    slots_l_ = register_buffer("slots_L", torch::zeros({2 * cap_l_}, long_opts));
    slots_r_ = register_buffer("slots_R", torch::zeros({2 * cap_r_}, long_opts));
    live_l_ = register_buffer("live_L", torch::zeros({cap_l_}, bool_opts));
    live_r_ = register_buffer("live_R", torch::zeros({cap_r_}, bool_opts));
    support_slots_ = register_buffer("support_slots", torch::zeros({cap_u_}, long_opts));
    support_live_ = register_buffer("support_live", torch::zeros({cap_u_}, bool_opts));
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
    torch::NoGradGuard no_grad;
    if (init) {
      WritePairs(Side::kLeft, RandomPairs(d_out, s_l_));
      WritePairs(Side::kRight, RandomPairs(d_in, s_r_));
      RefreshSupport();
    } else {
      RebuildSlots();  // no active pair until Load(): every slot idle
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
  // The forward's shapes are the fixed capacities; a selection update rewrites the slots in place.
  bool CudaGraphSafe() const override { return true; }

  // Reads the counts on the host (once, at load) and rebuilds the slots from the loaded state.
  void AfterLoad() override {
    torch::NoGradGuard no_grad;
    n_l_ = std::clamp<int64_t>(num_l_.item<int64_t>(), 0, cap_l_);
    n_r_ = std::clamp<int64_t>(num_r_.item<int64_t>(), 0, cap_r_);
    n_support_ = std::clamp<int64_t>(support_size_.item<int64_t>(), 0, cap_u_);
    RebuildSlots();
  }

  std::map<std::string, double> Diagnostics() override {
    torch::NoGradGuard no_grad;
    std::map<std::string, double> d;
    double sq = 0.0;
    for (const auto& [theta, n] : {std::pair{theta_l_, n_l_}, std::pair{theta_r_, n_r_}}) {
      if (!theta.defined() || n == 0) continue;
      auto [c, s] = CosSin(theta.narrow(0, 0, n));
      torch::Tensor blocks = torch::stack({torch::stack({c, s}, 1), torch::stack({-s, c}, 1)}, 1);  // [n, 2, 2]
      const double e = OrthogonalityError(blocks);
      sq += e * e * static_cast<double>(n);  // upper bound over the n disjoint blocks
    }
    d["orthogonality_error"] = std::sqrt(sq);
    if (magnitude_ == "oer_softmax") {
      torch::Tensor scale = Scale().to(torch::kFloat64);
      const double e = total_energy_.to(torch::kFloat64).item<double>();
      const double got = (scale * base_row_norms_.to(torch::kFloat64)).pow(2).sum().item<double>();
      d["oer_energy_error"] = std::abs(got - e) / std::max(e, 1e-30);
    }
    d["active_pairs_L"] = static_cast<double>(n_l_);
    d["active_pairs_R"] = static_cast<double>(n_r_);
    return d;
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
      if (use_left_) WritePairs(Side::kLeft, RandomPairs(Shape().d_out, want_l));
      if (use_right_) WritePairs(Side::kRight, RandomPairs(Shape().d_in, want_r));
    } else {
      if (use_left_) WritePairs(Side::kLeft, TopPairs(row_ema_, want_l));
      if (use_right_) WritePairs(Side::kRight, TopPairs(col_ema_, want_r));
    }
    RefreshSupport();
  }

 protected:
  torch::Tensor AdaptedForward(const torch::Tensor& x) override {
    if (is_training() && selection_ == "topk_ema") {
      torch::NoGradGuard no_grad;
      col_ema_.mul_(ema_beta_).add_(MeanSquare(x, Shape().d_in), 1 - ema_beta_);
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
        ema.mul_(beta).add_(MeanSquare(g, d_out), 1 - beta);
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

  // Rotates all `cap` slots at once; idle slots get c = 1, s = 0 (no change, no angle gradient).
  torch::Tensor Rotate(const torch::Tensor& x, const torch::Tensor& theta, const torch::Tensor& slots,
                       const torch::Tensor& live, int64_t cap, bool transpose, bool in_place) const {
    if (!theta.defined() || cap <= 0) return x;
    auto [c, s] = CosSin(theta.narrow(0, 0, cap));
    c = torch::where(live, c, torch::ones_like(c));
    s = torch::where(live, s, torch::zeros_like(s));
    return ApplyGivens(x, slots.view({cap, 2}), c, transpose ? -s : s, in_place);
  }

  torch::Tensor Core(const torch::Tensor& x) {
    const int64_t d_out = Shape().d_out;
    const int64_t last = x.dim() - 1;
    if (core_ == "lowrank") return torch::matmul(torch::matmul(x, low_b_), low_a_.t()) * lowrank_scale_;
    if (core_ == "selective_diag") {
      if (cap_u_ <= 0) return torch::zeros_like(x);
      torch::Tensor factor = 1.0 + delta_.narrow(0, 0, cap_u_);
      torch::Tensor scaled = x.index_select(last, support_slots_) * factor;
      scaled = torch::where(support_live_, scaled, torch::zeros_like(scaled));
      return torch::zeros_like(x).index_copy(last, support_slots_, scaled);
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
    torch::Tensor xr = Rotate(x, theta_r_, slots_r_, live_r_, cap_r_, /*transpose=*/false, /*in_place=*/false);
    // Core's output is a fresh tensor that no backward reads: the left rotation scatters into it.
    torch::Tensor y = Rotate(Core(xr), theta_l_, slots_l_, live_l_, cap_l_, /*transpose=*/true, /*in_place=*/true);
    if (core_ == "selective_diag" && cap_u_ > 0) {
      // The public code subtracts in float32 (an upcast for bfloat16, where ours rounds the same
      // way); for float64 activations that cast would round δ to float32 (about 1e-7) and break
      // the exact merge, so the subtraction stays in the activations' dtype.
      const int64_t last = x.dim() - 1;
      torch::Tensor picked = x.index_select(last, support_slots_);
      picked = torch::where(support_live_, picked, torch::zeros_like(picked));
      y = y - torch::zeros_like(x).index_copy(last, support_slots_, picked);
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

  enum class Side { kLeft, kRight };

  // Writes pairs into the state's prefix (−1 beyond), the counts on device and host, and the
  // side's slots. pairs.size(0) is a host integer (the selection's count), so nothing syncs.
  void WritePairs(Side side, const torch::Tensor& pairs) {
    const bool left = side == Side::kLeft;
    torch::Tensor& buffer = left ? pairs_l_ : pairs_r_;
    const int64_t n = std::min<int64_t>(pairs.size(0), left ? cap_l_ : cap_r_);
    buffer.fill_(-1);
    if (n > 0) buffer.narrow(0, 0, n).copy_(pairs.narrow(0, 0, n));
    (left ? num_l_ : num_r_).fill_(n);
    (left ? n_l_ : n_r_) = n;
    FillSlots(left ? slots_l_ : slots_r_, left ? live_l_ : live_r_, buffer.narrow(0, 0, n).reshape({-1}),
              left ? Shape().d_out : Shape().d_in, /*per_slot=*/2);
  }

  void RefreshSupport() {
    if (core_ != "selective_diag") return;
    const int64_t n = std::min(n_r_, k_);
    support_.zero_();
    if (n > 0) support_.narrow(0, 0, 2 * n).copy_(pairs_r_.narrow(0, 0, n).reshape({-1}));
    support_size_.fill_(2 * n);
    n_support_ = std::min(2 * n, cap_u_);
    FillSlots(support_slots_, support_live_, support_.narrow(0, 0, n_support_), Shape().d_in, 1);
  }

  // The slots of both sides and of the support from the state and the host counts.
  void RebuildSlots() {
    FillSlots(slots_l_, live_l_, pairs_l_.narrow(0, 0, n_l_).reshape({-1}), Shape().d_out, /*per_slot=*/2);
    FillSlots(slots_r_, live_r_, pairs_r_.narrow(0, 0, n_r_).reshape({-1}), Shape().d_in, /*per_slot=*/2);
    FillSlots(support_slots_, support_live_, support_.narrow(0, 0, n_support_), Shape().d_in, /*per_slot=*/1);
  }

  // Writes `active` (distinct feature indices, a whole number of slots of `per_slot` features)
  // into the front of `slots`, and fills the rest with the lowest features not in `active`, so
  // that all indices in `slots` are distinct; live marks the active slots. Sorting by
  // (used, index) finds the spare features on the device without reading anything back.
  void FillSlots(torch::Tensor& slots, torch::Tensor& live, const torch::Tensor& active, int64_t features,
                 int64_t per_slot) const {
    const int64_t total = slots.size(0), a = std::min<int64_t>(active.numel(), total);
    if (total == 0) return;
    auto long_opts = Options().dtype(torch::kLong);
    if (a > 0) slots.narrow(0, 0, a).copy_(active.narrow(0, 0, a));
    if (a < total) {
      torch::Tensor used = torch::zeros({features}, long_opts);
      if (a > 0) used.index_fill_(0, active.narrow(0, 0, a), 1);
      torch::Tensor key = used * features + torch::arange(features, long_opts);
      slots.narrow(0, a, total - a).copy_(std::get<1>(torch::sort(key)).narrow(0, 0, total - a));
    }
    live.copy_(torch::arange(live.size(0), long_opts) < a / per_slot);
  }

  nlohmann::json settings_;
  int64_t count_ = 0, s_l_ = 0, s_r_ = 0, k_ = 0, block_ = 4;
  int64_t update_interval_ = 1, warmup_steps_ = 0;
  int64_t n_l_ = 0, n_r_ = 0, n_support_ = 0;  // host copies of the active counts
  int64_t cap_l_ = 0, cap_r_ = 0, cap_u_ = 0;   // fixed slot counts: pairs per side, support indices
  bool cayley_ = true, high_low_ = false, use_gumbel_ = false, use_left_ = true, use_right_ = true;
  bool scope_output_ = false, tanh_clip_ = false;
  double max_angle_ = 0, ema_beta_ = 0.98, warmup_ratio_ = 0, gumbel_tau_ = 1;
  double oer_temperature_ = 1, ecd_temperature_ = 1, ecd_alpha_ = 0.5, eps_ = 1e-8, lowrank_scale_ = 1;
  std::string selection_, core_, magnitude_;
  torch::Tensor theta_l_, theta_r_, diag_, blocks_, low_a_, low_b_, delta_, log_mag_;
  torch::Tensor pairs_l_, pairs_r_, num_l_, num_r_, row_ema_, col_ema_, support_, support_size_;
  torch::Tensor base_row_norms_, total_energy_;
  torch::Tensor slots_l_, slots_r_, live_l_, live_r_, support_slots_, support_live_;  // not checkpointed
};

}  // namespace

std::shared_ptr<Adapter> MakeJora(const std::string&, const AdapterOptions& options, torch::Tensor weight,
                                  torch::Tensor bias, const LinearShape& shape) {
  return std::make_shared<JoraAdapter>(options, std::move(weight), std::move(bias), shape);
}

}  // namespace sweepd::adapters
