// SORA (Chang et al. 2025; the authors' layer MaeChd/SORA peft/tuners/sora/layer.py):
// Pre-Diag followed by the rotation I + s_p (C Dᵀ − D Cᵀ), C, D [d_out, r_p].
#include "common/methods/lora_like.h"

namespace sweepd::methods {

MethodInfo Sora() {
  MethodInfo m;
  m.name = "sora";
  m.label = "SORA";
  m.label_keys = {"r", "r_p"};
  m.options = LoraLikeOptions({IntOption("r_p", 4, 1, "rotation rank (the authors' default 4)"),
                               NumberOption("initial_s_p", 1.0, 0.0, "rotation scale numerator"),
                               ChoiceOption("rotation", "taylor", {"taylor", "exact"},
                                            "taylor: I + s_p K; exact: exp(s_p K)")});
  for (OptionSpec& o : m.options) {
    if (o.name == "initial_s_p") o.min_exclusive = true;  // s_p must be positive
  }
  m.size_knob = "r";
  m.count = [](const MethodSettings& s, const LinearShape& sh) -> Result<int64_t> {
    return s.Int("r") * (sh.d_in + sh.d_out) + 2 * s.Int("r_p") * sh.d_out + sh.d_out;
  };
  m.tensor_markers = {"lora_C"};
  m.budget_rows = {nlohmann::json::object(),  // r searched, r_p = 4
                   {{"r", 8}, {"knob", "r_p"}}};  // r fixed, r_p searched
  m.components = {{ParamComponent::Kind::kRotation, nlohmann::json::object(), {{"method", "pre_diag"}}},
                  {ParamComponent::Kind::kMagnitude, {{"method", "pre_diag"}}, {{"method", "lora"}}}};
  return m;
}

}  // namespace sweepd::methods
