// LoRA (Hu et al. 2021) as PEFT 0.21's LoraConfig: rsLoRA and DoRA as flags too.
#include "common/methods/lora_like.h"
#include "common/methods/peft_layout.h"

namespace sweepd::methods {

MethodInfo Lora() {
  MethodInfo m;
  m.name = "lora";
  m.label = "LoRA";
  m.label_keys = {"r"};
  m.options = LoraLikeOptions({BoolOption("rslora", false, "scale alpha / sqrt(r) (Kalajdzievski 2023)"),
                               BoolOption("dora", false, "build DoRA's magnitude and direction"),
                               ChoiceOption("dora_impl", "conditioning", {"conditioning", "column_norm"},
                                            "with dora: how the column norm is computed"),
                               AliasOption("use_rslora", {"rslora"}, OptionType::kBool),
                               AliasOption("use_dora", {"dora"}, OptionType::kBool)});
  m.size_knob = "r";
  m.count = [](const MethodSettings& s, const LinearShape& sh) { return CountLowRank(s, sh, s.Bool("dora") ? 1 : 0); };
  m.adapter = [](const MethodSettings& s) { return std::string(s.Bool("dora") ? "dora" : "lora"); };
  m.peft_type = "LORA";
  m.peft_fields = LoraConfigFields();
  m.to_peft = LoraToPeft;
  m.from_peft = LoraFromPeft;
  m.tensor_markers = {"lora_A"};
  return m;
}

}  // namespace sweepd::methods
