// One PEFT method as every layer sees it: its name and table label, its options with their
// types, defaults and ranges, its size knob, its closed-form parameter count, its PEFT layout
// and its conformance tolerances. A method file (common/methods/<name>.cc) fills one MethodInfo
// and registry.cc lists it; nothing else names a method (as PEFT's register_peft_method).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/param_count.h"
#include "common/status.h"

namespace sweepd::methods {

enum class OptionType { kInt, kNumber, kBool, kChoice };

struct OptionSpec {
  std::string name;
  OptionType type = OptionType::kInt;
  // The value used when the option is absent; null when the method derives it from other
  // options (AdaLoRA's init_r from r) or from the layer (IA3's feedforward).
  nlohmann::json default_value;
  std::optional<double> min;  // inclusive bounds for kInt and kNumber
  std::optional<double> max;
  bool min_exclusive = false;  // min is a strict bound (a learning-rate ratio must be > 0)
  std::vector<std::string> choices;  // for kChoice
  // Non-empty: an alias that sets each of these options to its value (JORA's S sets S_L and
  // S_R; lora_alpha is PEFT's spelling of alpha). Resolution replaces it by its targets.
  std::vector<std::string> sets;
  std::string help;
};

// Builders for the option tables of the method files.
OptionSpec IntOption(std::string name, nlohmann::json default_value, std::optional<double> min = std::nullopt,
                     std::string help = "");
OptionSpec NumberOption(std::string name, nlohmann::json default_value, std::optional<double> min = std::nullopt,
                        std::string help = "");
OptionSpec BoolOption(std::string name, nlohmann::json default_value, std::string help = "");
OptionSpec ChoiceOption(std::string name, std::string default_value, std::vector<std::string> choices,
                        std::string help = "");
OptionSpec AliasOption(std::string name, std::vector<std::string> sets, OptionType type = OptionType::kInt,
                       std::optional<double> min = std::nullopt);

struct MethodInfo;

// Resolved settings of one method ({"method": ..., options}; aliases already replaced):
// reads fall back to the method's declared defaults, so a default is written once.
class MethodSettings {
 public:
  MethodSettings(const MethodInfo& method, nlohmann::json settings);

  const MethodInfo& method() const { return *method_; }
  const nlohmann::json& json() const { return settings_; }
  // Whether the option is given (a null value counts as absent).
  bool Has(const std::string& key) const;
  // The option's value, else its declared default; a missing default is a programming error
  // (std::logic_error): options without one are read with an explicit fallback.
  int64_t Int(const std::string& key) const;
  int64_t Int(const std::string& key, int64_t fallback) const;
  double Number(const std::string& key) const;
  double Number(const std::string& key, double fallback) const;
  bool Bool(const std::string& key) const;
  bool Bool(const std::string& key, bool fallback) const;
  std::string String(const std::string& key) const;

 private:
  const nlohmann::json& Value(const std::string& key) const;
  const MethodInfo* method_;
  nlohmann::json settings_;
};

// A component of a method's parameter count, by difference (Table 5 of the seed design):
// count(settings + with) − count(settings + without); `without` null: the whole count.
struct ParamComponent {
  enum class Kind { kRotation, kMagnitude } kind = Kind::kRotation;
  nlohmann::json with = nlohmann::json::object();
  nlohmann::json without = nlohmann::json::object();
};

// Largest absolute errors `sweep-train conformance` accepts against a float64 reference file.
struct ConformanceTolerances {
  double value = 1e-9;   // outputs, gradients, our own merge
  double merged = 1e-9;  // the reference's merged weight (1e-6 where built through an inverse)
  // Gradients the reference itself computes in float32 (JORA's magnitude): its summation
  // order decides the last float32 bits, which no port can match.
  std::vector<std::string> float32_gradients;
  double float32 = 1e-6;
};

// What a PEFT adapter_config.json holds beyond a method's settings: written from the job,
// read back from the folder (common/methods/peft_layout.h).
struct PeftContext {
  std::vector<std::string> targets;            // target_modules ({"all-linear"} for track B)
  int64_t total_steps = 0;                     // AdaLoRA's total_step
  nlohmann::json rank_pattern = nullptr;       // AdaLoRA's rank_pattern (null: unpruned)
};

// The method's settings and context read from a PEFT config.
struct PeftSettings {
  nlohmann::json settings;  // {"method": ..., options}
  PeftContext context;
};

struct MethodInfo {
  std::string name;                     // "lora", the settings' "method"
  std::string label;                    // "LoRA", in tables and plots
  std::vector<std::string> label_keys;  // options that name a configuration: LoRA(r=16)
  std::vector<OptionSpec> options;      // aliases included
  // The size knob BudgetSolver searches by default ("" for none); may be an alias (JORA's S).
  std::string size_knob;
  // Per-group learning rates of train (lr_theta, lr_core) that this method's tensors use.
  std::vector<std::string> train_lr_keys;
  std::function<Result<int64_t>(const MethodSettings&, const LinearShape&)> count;
  // The tensor code that builds the adapter (worker/adapters/factory.cc): usually the name;
  // LoRA with dora: true is built by DoRA's, LoRA+ by LoRA's.
  std::function<std::string(const MethodSettings&)> adapter;
  // Learning-rate multiplier of a trainable tensor (PEFT's saved name, "lora_B.weight"); 1 by default.
  std::function<double(const MethodSettings&, const std::string& tensor)> lr_scale;
  std::string peft_type;  // PEFT's peft_type when PEFT can load it ("LORA"); "" when not
  // PEFT 0.21's config class for peft_type: every field it writes beyond PeftConfig's, with
  // its default (LoraConfig, IA3Config, ...), and this method's values of those fields.
  nlohmann::json peft_fields = nlohmann::json::object();
  // The error says why these settings have no PEFT equivalent.
  std::function<Result<nlohmann::json>(const MethodSettings&, const PeftContext&)> to_peft;
  // Set on the one method that reads a peft_type (LoRA reads LORA, rsLoRA and DoRA included):
  // our settings from the config's fields; the error names the field.
  std::function<Result<PeftSettings>(const nlohmann::json& config)> from_peft;
  // Substrings of a reference file's tensor names that identify the method, when its
  // metadata has no "method" (conformance).
  std::vector<std::string> tensor_markers;
  ConformanceTolerances tolerances;
  std::vector<ParamComponent> components;
  // The rows of `sweep-train budget`'s default table: options merged into {"method": name},
  // "knob" naming the searched knob where it is not size_knob. Default: one row, the method alone.
  std::vector<nlohmann::json> budget_rows = {nlohmann::json::object()};
  std::function<std::string(const MethodSettings&)> core_type;  // "Low-rank", "Diagonal", ...
};

}  // namespace sweepd::methods
