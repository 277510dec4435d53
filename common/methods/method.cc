// Option builders and MethodSettings, the typed reads that fall back to declared defaults.
#include "common/methods/method.h"

#include <cmath>
#include <stdexcept>

#include "common/methods/registry.h"

namespace sweepd::methods {

using nlohmann::json;

OptionSpec IntOption(std::string name, json default_value, std::optional<double> min, std::string help) {
  OptionSpec o;
  o.name = std::move(name);
  o.type = OptionType::kInt;
  o.default_value = std::move(default_value);
  o.min = min;
  o.help = std::move(help);
  return o;
}

OptionSpec NumberOption(std::string name, json default_value, std::optional<double> min, std::string help) {
  OptionSpec o = IntOption(std::move(name), std::move(default_value), min, std::move(help));
  o.type = OptionType::kNumber;
  return o;
}

OptionSpec BoolOption(std::string name, json default_value, std::string help) {
  OptionSpec o;
  o.name = std::move(name);
  o.type = OptionType::kBool;
  o.default_value = std::move(default_value);
  o.help = std::move(help);
  return o;
}

OptionSpec ChoiceOption(std::string name, std::string default_value, std::vector<std::string> choices,
                        std::string help) {
  OptionSpec o;
  o.name = std::move(name);
  o.type = OptionType::kChoice;
  o.default_value = std::move(default_value);
  o.choices = std::move(choices);
  o.help = std::move(help);
  return o;
}

OptionSpec AliasOption(std::string name, std::vector<std::string> sets, OptionType type, std::optional<double> min) {
  OptionSpec o;
  o.name = std::move(name);
  o.type = type;
  o.min = min;
  o.sets = std::move(sets);
  return o;
}

MethodSettings::MethodSettings(const MethodInfo& method, nlohmann::json settings)
    : method_(&method), settings_(std::move(settings)) {}

bool MethodSettings::Has(const std::string& key) const {
  return settings_.contains(key) && !settings_[key].is_null();
}

const nlohmann::json& MethodSettings::Value(const std::string& key) const {
  if (Has(key)) return settings_[key];
  const OptionSpec* o = FindOption(*method_, key);
  if (o == nullptr || o->default_value.is_null()) {
    throw std::logic_error(method_->name + " option '" + key + "' has no declared default");
  }
  return o->default_value;
}

int64_t MethodSettings::Int(const std::string& key) const {
  const nlohmann::json& v = Value(key);
  return v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(std::llround(v.get<double>()));
}

int64_t MethodSettings::Int(const std::string& key, int64_t fallback) const {
  return Has(key) ? Int(key) : fallback;
}

double MethodSettings::Number(const std::string& key) const { return Value(key).get<double>(); }

double MethodSettings::Number(const std::string& key, double fallback) const {
  return Has(key) ? Number(key) : fallback;
}

bool MethodSettings::Bool(const std::string& key) const { return Value(key).get<bool>(); }

bool MethodSettings::Bool(const std::string& key, bool fallback) const { return Has(key) ? Bool(key) : fallback; }

std::string MethodSettings::String(const std::string& key) const { return Value(key).get<std::string>(); }

}  // namespace sweepd::methods
