// Pre-Diag (the SORA paper's ablation): a trained diagonal on the frozen output, plus LoRA.
#include "common/methods/lora_like.h"

namespace sweepd::methods {

MethodInfo PreDiag() {
  MethodInfo m;
  m.name = "pre_diag";
  m.label = "Pre-Diag";
  m.label_keys = {"r"};
  m.options = LoraLikeOptions();
  m.size_knob = "r";
  m.count = [](const MethodSettings& s, const LinearShape& sh) { return CountLowRank(s, sh, 1); };
  m.components = {{ParamComponent::Kind::kMagnitude, nlohmann::json::object(), {{"method", "lora"}}}};
  return m;
}

}  // namespace sweepd::methods
