// The registry of PEFT methods: every layer (spec validation, budgets, tables, the trainer's
// factory and optimizer groups, conformance) asks it, and every entry point reads adapter
// settings through Resolve, so aliases and unknown keys are handled in one place.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/methods/method.h"
#include "common/status.h"

namespace sweepd::methods {

// Every method, in the order the documentation lists them.
const std::vector<const MethodInfo*>& Methods();
// The method named `name`, or nullptr.
const MethodInfo* FindMethod(const std::string& name);
// Every method name, comma-separated, for messages.
std::string MethodNames();
// The display label of a method ("lora" -> "LoRA"); unknown names unchanged.
std::string DisplayLabel(const std::string& name);

// The option (or alias) `key` of `method`, or nullptr.
const OptionSpec* FindOption(const MethodInfo& method, const std::string& key);
// The option names of `method`, comma-separated (aliases say what they set), for messages.
std::string OptionNames(const MethodInfo& method);
// Empty when `value` has the option's type and range; else what is wrong with it.
std::string CheckOptionValue(const OptionSpec& option, const nlohmann::json& value);
// The options an alias named `key` sets in any method (JORA's S: S_L, S_R); empty if none.
std::vector<std::string> AliasTargets(const std::string& key);

// Reads adapter settings {"method": ..., options}: the method must be known, every key an
// option of it (an error names the key and lists the method's options), every value of its
// option's type and range; aliases are replaced by what they set (S: 96 -> S_L: 96, S_R: 96;
// giving both an alias and one of its targets is an error). Null values count as absent.
Result<MethodSettings> Resolve(const nlohmann::json& settings);

// `settings` with option `key` set to `value`; an alias sets its targets instead.
nlohmann::json WithOption(const nlohmann::json& settings, const std::string& key, const nlohmann::json& value);
// Whether `settings` gives `key` or, for an alias, any of its targets.
bool GivesOption(const nlohmann::json& settings, const std::string& key);

}  // namespace sweepd::methods
