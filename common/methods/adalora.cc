// AdaLoRA (Zhang et al. 2023) as PEFT 0.21's AdaLoraConfig: P diag(E) Q with an
// importance-driven rank budget; init_r · (d_in + d_out + 1) parameters per layer.
#include "common/methods/method.h"

namespace sweepd::methods {

MethodInfo Adalora() {
  MethodInfo m;
  m.name = "adalora";
  m.label = "AdaLoRA";
  m.label_keys = {"init_r", "target_r"};
  m.options = {IntOption("r", 12, 1, "initial rank when init_r is not given"),
               IntOption("init_r", nullptr, 1, "initial rank (default: r)"),
               IntOption("target_r", nullptr, 1, "average rank after pruning (default: min(8, init_r))"),
               NumberOption("alpha", 8.0, std::nullopt, "scale numerator (PEFT's lora_alpha)"),
               AliasOption("lora_alpha", {"alpha"}, OptionType::kNumber),
               NumberOption("dropout", 0.0, 0.0, "dropout on the branch's input while training"),
               AliasOption("lora_dropout", {"dropout"}, OptionType::kNumber, 0.0),
               IntOption("tinit", 0, 0, "steps before pruning starts"),
               IntOption("tfinal", 0, 0, "steps of fine-tuning after pruning ends"),
               IntOption("deltaT", 1, 1, "steps between budget allocations"),
               NumberOption("beta1", 0.85, 0.0, "EMA of the sensitivity"),
               NumberOption("beta2", 0.85, 0.0, "EMA of its uncertainty"),
               NumberOption("orth_reg_weight", 0.5, 0.0, "weight of the orthogonal regulariser"),
               BoolOption("orth_reg_squared", true, "squared Frobenius norm in the regulariser")};
  m.size_knob = "init_r";
  m.count = [](const MethodSettings& s, const LinearShape& sh) -> Result<int64_t> {
    return s.Int("init_r", s.Int("r")) * (sh.d_in + sh.d_out + 1);
  };
  m.tensor_markers = {"lora_E"};
  return m;
}

}  // namespace sweepd::methods
