// JORA (the seed design; checked against the public implementation Lucas-Jin-Qh/JORA
// src/peft/tuners/jora): Givens rotations on S_L output and S_R input pairs around a core
// (diag, block, lowrank, selective_diag), with an optional energy-preserving magnitude.
#include <algorithm>

#include "common/methods/method.h"

namespace sweepd::methods {
namespace {

Result<int64_t> CountJora(const MethodSettings& s, const LinearShape& sh) {
  const int64_t sl = s.Int("S_L"), sr = s.Int("S_R"), k = s.Int("k");
  if (2 * sl > sh.d_out || 2 * sr > sh.d_in) {
    return Status::InvalidArgument("jora needs 2·S_L <= d_out and 2·S_R <= d_in (disjoint pairs) on '" + sh.name +
                                   "'");
  }
  const std::string sided = s.String("single_sided");
  int64_t count = (sided == "right" ? 0 : sl) + (sided == "left" ? 0 : sr);
  const int64_t m = std::min(sh.d_in, sh.d_out);
  const std::string core = s.String("core");
  if (core == "diag") {
    count += m;
  } else if (core == "block") {
    const int64_t b = s.Int("block_size");
    count += (m / b) * b * b + (m % b);
  } else if (core == "lowrank") {
    count += s.Int("lowrank_r") * (sh.d_in + sh.d_out);
  } else {  // selective_diag
    if (sh.d_in != sh.d_out) {
      return Status::InvalidArgument("jora core selective_diag needs a square layer; '" + sh.name + "' is " +
                                     std::to_string(sh.d_out) + "x" + std::to_string(sh.d_in));
    }
    count += 2 * k;
  }
  if (s.String("magnitude") != "none") count += sh.d_out;
  return count;
}

}  // namespace

MethodInfo Jora() {
  MethodInfo m;
  m.name = "jora";
  m.label = "JORA";
  m.label_keys = {"core", "S_L", "k"};
  m.options = {
      IntOption("S_L", 32, 0, "rotation slots on the output side"),
      IntOption("S_R", 32, 0, "rotation slots on the input side"),
      AliasOption("S", {"S_L", "S_R"}, OptionType::kInt, 0),
      IntOption("k", 8, 0, "active pairs (selection) and selective_diag's support"),
      ChoiceOption("core", "diag", {"diag", "block", "lowrank", "selective_diag"}),
      IntOption("block_size", 4, 1, "block core's block size"),
      IntOption("lowrank_r", 8, 1, "lowrank core's rank"),
      NumberOption("lowrank_alpha", nullptr, std::nullopt, "lowrank core's scale numerator (default: lowrank_r)"),
      BoolOption("zero_init_core", false, "start the core at zero"),
      ChoiceOption("magnitude", "oer_softmax", {"none", "ecd_tanh", "oer_softmax"}),
      ChoiceOption("magnitude_scope", "delta", {"delta", "output"}, "scale δ, or the whole output"),
      NumberOption("ecd_alpha", 0.5),
      NumberOption("ecd_temperature", 1.0, 0.0),
      NumberOption("oer_temperature", 1.0, 0.0),
      NumberOption("eps", 1e-8, 0.0),
      ChoiceOption("rotation_param", "cayley", {"angle", "cayley"}),
      NumberOption("theta_init_std", 0.02, 0.0, "standard deviation of the initial angles"),
      NumberOption("max_angle", 0.0, 0.0, "clamp of the angles after each step (0: off)"),
      BoolOption("tanh_clip", false, "δ ← tanh(δ) (no exact merge)"),
      ChoiceOption("selection", "topk_ema", {"none", "topk_ema", "random"}),
      ChoiceOption("pairing_strategy", "consecutive", {"consecutive", "high_low"}),
      NumberOption("ema_beta", 0.98, 0.0),
      IntOption("update_interval", 1, 1),
      IntOption("warmup_steps", 0, 0),
      NumberOption("warmup_ratio", 0.0, 0.0),
      BoolOption("use_gumbel", false),
      NumberOption("gumbel_tau", 1.0, 0.0),
      ChoiceOption("single_sided", "none", {"none", "left", "right"}),
  };
  m.size_knob = "S";
  m.train_lr_keys = {"lr_theta", "lr_core"};
  m.count = CountJora;
  m.tensor_markers = {"theta_L", "core."};
  m.budget_rows = {{{"core", "diag"}},
                   {{"core", "block"}, {"S_L", 32}, {"S_R", 32}, {"knob", "block_size"}},
                   {{"core", "lowrank"}, {"S_L", 32}, {"S_R", 32}, {"knob", "lowrank_r"}},
                   {{"core", "selective_diag"}, {"S_L", 32}, {"S_R", 32}, {"magnitude", "none"}, {"knob", "k"}}};
  m.tolerances.float32_gradients = {"ecd_log_mag"};
  m.components = {{ParamComponent::Kind::kRotation, nlohmann::json::object(), {{"S_L", 0}, {"S_R", 0}}},
                  {ParamComponent::Kind::kMagnitude, nlohmann::json::object(), {{"magnitude", "none"}}}};
  m.core_type = [](const MethodSettings& s) {
    const std::string core = s.String("core");
    if (core == "diag" || core == "selective_diag") return std::string("Diagonal");
    if (core == "block") return std::string("Block");
    return std::string("Low-rank");
  };
  return m;
}

}  // namespace sweepd::methods
