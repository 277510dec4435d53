// rsLoRA (Kalajdzievski 2023): LoRA with the scale alpha / sqrt(r); PEFT's use_rslora.
#include "common/methods/lora_like.h"
#include "common/methods/peft_layout.h"

namespace sweepd::methods {

MethodInfo Rslora() {
  MethodInfo m;
  m.name = "rslora";
  m.label = "rsLoRA";
  m.label_keys = {"r"};
  m.options = LoraLikeOptions();
  m.size_knob = "r";
  m.count = [](const MethodSettings& s, const LinearShape& sh) { return CountLowRank(s, sh, 0); };
  m.adapter = [](const MethodSettings&) { return std::string("lora"); };
  m.peft_type = "LORA";
  m.peft_fields = LoraConfigFields();
  m.to_peft = [](const MethodSettings& s, const PeftContext& c) -> Result<nlohmann::json> {
    Result<nlohmann::json> fields = LoraToPeft(s, c);
    if (fields.ok()) (*fields)["use_rslora"] = true;
    return fields;
  };
  return m;
}

}  // namespace sweepd::methods
