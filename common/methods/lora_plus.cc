// LoRA+ (Hayou et al. 2024, "LoRA+: Efficient Low Rank Adaptation of Large Models"): LoRA
// whose B matrices learn lr_ratio times faster than its A matrices, as PEFT's
// create_loraplus_optimizer (loraplus_lr_ratio). The adapter is plain LoRA, exported in
// PEFT's LoRA layout; only the optimizer groups differ. PEFT's loraplus_lr_embedding does not
// apply: sweepd adapts the blocks' linear layers, never an embedding.
#include "common/methods/lora_like.h"
#include "common/methods/peft_layout.h"

namespace sweepd::methods {

MethodInfo LoraPlus() {
  MethodInfo m;
  m.name = "lora_plus";
  m.label = "LoRA+";
  m.label_keys = {"r", "lr_ratio"};
  OptionSpec ratio = NumberOption("lr_ratio", 16.0, 0.0, "learning rate of B over that of A (the paper's λ)");
  ratio.min_exclusive = true;
  m.options = LoraLikeOptions({ratio, AliasOption("loraplus_lr_ratio", {"lr_ratio"}, OptionType::kNumber, 0.0)});
  m.options.back().min_exclusive = true;
  m.size_knob = "r";
  m.count = [](const MethodSettings& s, const LinearShape& sh) { return CountLowRank(s, sh, 0); };
  m.adapter = [](const MethodSettings&) { return std::string("lora"); };
  m.lr_scale = [](const MethodSettings& s, const std::string& tensor) {
    return tensor == "lora_B.weight" ? s.Number("lr_ratio") : 1.0;
  };
  m.peft_type = "LORA";
  m.peft_fields = LoraConfigFields();
  m.to_peft = LoraToPeft;
  return m;
}

}  // namespace sweepd::methods
