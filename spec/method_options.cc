// The per-method option table. An option missing here is rejected by validation, so a
// typo (`lora_r`, `oft_blocksize`) fails at submit time, not hours later in the trainer.
#include "spec/method_options.h"

#include <map>

namespace sweepd::spec {
namespace {

using Options = std::vector<OptionInfo>;

OptionInfo Int(const char* name) { return {name, OptionType::kInt, {}}; }
OptionInfo Number(const char* name) { return {name, OptionType::kNumber, {}}; }
OptionInfo Bool(const char* name) { return {name, OptionType::kBool, {}}; }
OptionInfo Choice(const char* name, std::vector<std::string> choices) {
  return {name, OptionType::kChoice, std::move(choices)};
}

Options LoraLike(Options extra) {
  Options o = {Int("r"), Number("alpha"), Number("dropout")};
  o.insert(o.end(), extra.begin(), extra.end());
  return o;
}

const std::map<std::string, Options>& Table() {
  static const auto* table = new std::map<std::string, Options>{
      {"lora", LoraLike({Bool("rslora"), Bool("dora")})},
      {"rslora", LoraLike({})},
      {"dora", LoraLike({})},
      {"pre_diag", LoraLike({})},
      {"sora", LoraLike({Int("r_p"), Number("initial_s_p"),
                         Choice("rotation", {"taylor", "matrix_exp"})})},
      {"oft", {Int("oft_block_size"), Int("r"), Bool("coft"), Number("eps"), Bool("block_share"),
               Number("dropout")}},
      {"boft", {Int("boft_block_size"), Int("boft_block_num"), Int("boft_n_butterfly_factor"),
                Number("dropout")}},
      {"ia3", {Bool("feedforward")}},
      {"adalora", {Int("r"), Int("init_r"), Int("target_r"), Number("alpha"), Number("lora_alpha"),
                   Number("dropout"), Int("tinit"), Int("tfinal"), Int("deltaT"), Number("beta1"),
                   Number("beta2"), Number("orth_reg_weight")}},
      {"sorsa", {Int("r"), Number("alpha"), Number("gamma"), Number("dropout")}},
      {"jora",
       {Int("S_L"), Int("S_R"), Int("k"),
        Choice("core", {"diag", "block", "lowrank", "selective_diag"}), Int("block_size"),
        Int("lowrank_r"), Number("lowrank_alpha"), Bool("zero_init_core"),
        Choice("magnitude", {"none", "ecd_tanh", "oer_softmax"}), Number("ecd_alpha"),
        Number("ecd_temperature"), Number("oer_temperature"),
        Choice("rotation_param", {"angle", "cayley"}),
        Choice("selection", {"none", "topk_ema", "random"}),
        Choice("pairing_strategy", {"consecutive", "high_low"}), Number("ema_beta"), Int("update_interval"),
        Int("warmup_steps"), Number("warmup_ratio"), Bool("use_gumbel"), Number("gumbel_tau"),
        Choice("single_sided", {"none", "left", "right"})}},
  };
  return *table;
}

}  // namespace

const std::vector<std::string>& KnownMethods() {
  static const auto* methods = new std::vector<std::string>{
      "lora", "rslora", "dora", "pre_diag", "sora", "oft", "boft", "adalora", "ia3", "sorsa", "jora"};
  return *methods;
}

bool IsKnownMethod(const std::string& method) { return Table().count(method) > 0; }

const OptionInfo* FindOption(const std::string& method, const std::string& option) {
  auto it = Table().find(method);
  if (it == Table().end()) return nullptr;
  for (const OptionInfo& o : it->second) {
    if (o.name == option) return &o;
  }
  return nullptr;
}

std::string OptionNames(const std::string& method) {
  auto it = Table().find(method);
  if (it == Table().end()) return "";
  std::string names;
  for (const OptionInfo& o : it->second) names += (names.empty() ? "" : ", ") + o.name;
  return names;
}

std::string CheckOptionValue(const OptionInfo& option, const nlohmann::json& value) {
  switch (option.type) {
    case OptionType::kInt:
      return value.is_number_integer() ? "" : "must be an integer, got " + value.dump();
    case OptionType::kNumber:
      return value.is_number() ? "" : "must be a number, got " + value.dump();
    case OptionType::kBool:
      return value.is_boolean() ? "" : "must be true or false, got " + value.dump();
    case OptionType::kChoice: {
      std::string list;
      for (const std::string& c : option.choices) {
        if (value.is_string() && value.get<std::string>() == c) return "";
        list += (list.empty() ? "" : ", ") + c;
      }
      return "must be one of " + list + ", got " + value.dump();
    }
  }
  return "";
}

}  // namespace sweepd::spec
