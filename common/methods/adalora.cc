// AdaLoRA (Zhang et al. 2023) as PEFT 0.21's AdaLoraConfig: P diag(E) Q with an
// importance-driven rank budget; init_r · (d_in + d_out + 1) parameters per layer.
#include <algorithm>

#include "common/methods/method.h"
#include "common/methods/peft_layout.h"

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
  m.peft_type = "ADALORA";
  m.peft_fields = LoraConfigFields();
  m.peft_fields.update({{"beta1", 0.85},          {"beta2", 0.85}, {"deltaT", 1},       {"init_r", 12},
                        {"orth_reg_weight", 0.5}, {"rank_pattern", nullptr}, {"target_r", 8}, {"tfinal", 0},
                        {"tinit", 0},             {"total_step", nullptr}});
  // r is LoraConfig's default: PEFT warns when an AdaLoraConfig sets it (AdaLoRA uses init_r).
  // PEFT requires total_step > tinit + tfinal. Once a rank is pruned, rank_pattern lists the
  // kept ranks of every layer and the tensors hold those only (PEFT's save_pretrained); PEFT
  // rebuilds the pruned shapes (resize_modules_by_rank_pattern) keeping ranknum = init_r, so its
  // scale alpha / init_r and its output equal ours. Null while nothing is pruned.
  m.to_peft = [](const MethodSettings& s, const PeftContext& c) -> Result<nlohmann::json> {
    const int64_t init_r = s.Int("init_r", s.Int("r"));
    if (c.total_steps <= s.Int("tinit") + s.Int("tfinal")) {
      return Status::InvalidArgument("adalora: PEFT needs train.steps (" + std::to_string(c.total_steps) +
                                     ") above tinit + tfinal (" + std::to_string(s.Int("tinit") + s.Int("tfinal")) +
                                     ")");
    }
    return nlohmann::json{{"r", 8},
                          {"lora_alpha", s.Number("alpha")},
                          {"lora_dropout", s.Number("dropout")},
                          {"init_r", init_r},
                          {"target_r", s.Int("target_r", std::min<int64_t>(8, init_r))},
                          {"tinit", s.Int("tinit")},
                          {"tfinal", s.Int("tfinal")},
                          {"deltaT", s.Int("deltaT")},
                          {"beta1", s.Number("beta1")},
                          {"beta2", s.Number("beta2")},
                          {"orth_reg_weight", s.Number("orth_reg_weight")},
                          {"total_step", c.total_steps},
                          {"rank_pattern", c.rank_pattern}};
  };
  m.from_peft = [](const nlohmann::json& c) -> Result<PeftSettings> {
    PeftSettings out;
    out.settings = {{"method", "adalora"}};
    for (const char* key : {"init_r", "target_r", "tinit", "tfinal", "deltaT", "beta1", "beta2", "orth_reg_weight"}) {
      if (c.contains(key)) out.settings[key] = c[key];
    }
    if (c.contains("lora_alpha")) out.settings["alpha"] = c["lora_alpha"];
    if (c.contains("lora_dropout")) out.settings["dropout"] = c["lora_dropout"];
    const nlohmann::json steps = c.value("total_step", nlohmann::json());
    out.context.total_steps = steps.is_number_integer() ? steps.get<int64_t>() : 0;
    // Per pruned layer, booleans (true: kept), as RankAllocator.mask_to_budget writes them; the
    // tensors hold the kept ranks only. Their count and keys are checked against the layers.
    out.context.rank_pattern = c.value("rank_pattern", nlohmann::json());
    const nlohmann::json& pattern = out.context.rank_pattern;
    if (!pattern.is_null() && !pattern.is_object()) {
      return Status::InvalidArgument("rank_pattern must be null or map each lora_E to a list of true/false");
    }
    for (const auto& [key, kept] : pattern.items()) {
      if (!kept.is_array()) return Status::InvalidArgument("rank_pattern '" + key + "' must be a list of true/false");
    }
    return out;
  };
  return m;
}

}  // namespace sweepd::methods
