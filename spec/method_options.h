// The options each adapter method accepts in a sweep spec, and their types: the one
// table that spec validation reads (names follow /work/shared/methods.md and the
// reference fixtures' configs).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweepd::spec {

enum class OptionType { kInt, kNumber, kBool, kChoice };

struct OptionInfo {
  std::string name;
  OptionType type = OptionType::kInt;
  std::vector<std::string> choices;  // for kChoice
};

// Every method name, in the order the documentation lists them.
const std::vector<std::string>& KnownMethods();
bool IsKnownMethod(const std::string& method);
// The option named `option` of `method`, or nullptr when the method has no such option.
const OptionInfo* FindOption(const std::string& method, const std::string& option);
// The option names of `method`, comma-separated, for error messages.
std::string OptionNames(const std::string& method);
// Empty when `value` has the option's type; else what is wrong with it.
std::string CheckOptionValue(const OptionInfo& option, const nlohmann::json& value);

}  // namespace sweepd::spec
