// DoRA (Liu et al. 2024): LoRA's direction with a trained per-output magnitude; PEFT's use_dora.
#include "common/methods/lora_like.h"
#include "common/methods/peft_layout.h"

namespace sweepd::methods {

MethodInfo Dora() {
  MethodInfo m;
  m.name = "dora";
  m.label = "DoRA";
  m.label_keys = {"r"};
  m.options = LoraLikeOptions({ChoiceOption("dora_impl", "conditioning", {"conditioning", "column_norm"},
                                            "how the column norm is computed")});
  m.size_knob = "r";
  m.count = [](const MethodSettings& s, const LinearShape& sh) { return CountLowRank(s, sh, 1); };
  m.peft_type = "LORA";
  m.peft_fields = LoraConfigFields();
  m.to_peft = LoraToPeft;
  m.tensor_markers = {"lora_magnitude_vector"};
  m.components = {{ParamComponent::Kind::kMagnitude, nlohmann::json::object(), {{"method", "lora"}}}};
  return m;
}

}  // namespace sweepd::methods
