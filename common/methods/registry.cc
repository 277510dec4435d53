// The list of registered methods and the one reader of adapter settings. A new method is a
// file common/methods/<name>.cc defining its MethodInfo and one line in SWEEPD_METHODS.
#include "common/methods/registry.h"

#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>

namespace sweepd::methods {

// Each X(Name) is a function MethodInfo Name() in common/methods/, in documentation order.
#define SWEEPD_METHODS(X) \
  X(Lora)                 \
  X(Rslora)               \
  X(Dora)                 \
  X(PreDiag)              \
  X(Sora)                 \
  X(Oft)                  \
  X(Boft)                 \
  X(Adalora)              \
  X(Ia3)                  \
  X(Sorsa)                \
  X(Jora)                 \
  X(LoraPlus)             \
  /* a new method: one line X(Name) above this one */

#define SWEEPD_DECLARE_METHOD(Name) MethodInfo Name();
SWEEPD_METHODS(SWEEPD_DECLARE_METHOD)
#undef SWEEPD_DECLARE_METHOD

namespace {

using nlohmann::json;

// Options every method takes: PEFT's init_weights (init_lora_weights, init_ia3_weights, ...),
// false when the tensors are loaded afterwards (saved adapters, reference files), so that
// data-dependent initialisation (SORSA's SVD split, JORA's pairs) is skipped.
void AddCommonOptions(MethodInfo& m) {
  m.options.push_back(BoolOption("init_weights", true,
                                 "false: skip data-dependent initialisation (the tensors are loaded next)"));
}

// Fills what a method file may leave out.
MethodInfo Completed(MethodInfo m) {
  AddCommonOptions(m);
  if (!m.adapter) {
    const std::string name = m.name;
    m.adapter = [name](const MethodSettings&) { return name; };
  }
  if (!m.lr_scale) m.lr_scale = [](const MethodSettings&, const std::string&) { return 1.0; };
  if (!m.core_type) m.core_type = [](const MethodSettings&) { return std::string("Low-rank"); };
  for (const OptionSpec& o : m.options) {
    for (const std::string& t : o.sets) {
      bool found = false;
      for (const OptionSpec& other : m.options) found = found || (other.name == t && other.sets.empty());
      if (!found) throw std::logic_error(m.name + ": alias '" + o.name + "' sets unknown option '" + t + "'");
    }
  }
  return m;
}

const std::vector<std::unique_ptr<MethodInfo>>& Table() {
  static const auto* table = [] {
    auto* t = new std::vector<std::unique_ptr<MethodInfo>>;
#define SWEEPD_ADD_METHOD(Name) t->push_back(std::make_unique<MethodInfo>(Completed(Name())));
    SWEEPD_METHODS(SWEEPD_ADD_METHOD)
#undef SWEEPD_ADD_METHOD
    return t;
  }();
  return *table;
}

std::string Join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string NumberText(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  return json(v).dump();
}

}  // namespace

const std::vector<const MethodInfo*>& Methods() {
  static const auto* list = [] {
    auto* l = new std::vector<const MethodInfo*>;
    for (const auto& m : Table()) l->push_back(m.get());
    return l;
  }();
  return *list;
}

const MethodInfo* FindMethod(const std::string& name) {
  for (const MethodInfo* m : Methods()) {
    if (m->name == name) return m;
  }
  return nullptr;
}

std::string MethodNames() {
  std::vector<std::string> names;
  for (const MethodInfo* m : Methods()) names.push_back(m->name);
  return Join(names, ", ");
}

std::string DisplayLabel(const std::string& name) {
  const MethodInfo* m = FindMethod(name);
  return m == nullptr ? name : m->label;
}

const OptionSpec* FindOption(const MethodInfo& method, const std::string& key) {
  for (const OptionSpec& o : method.options) {
    if (o.name == key) return &o;
  }
  return nullptr;
}

std::string OptionNames(const MethodInfo& method) {
  std::vector<std::string> names;
  for (const OptionSpec& o : method.options) {
    names.push_back(o.sets.empty() ? o.name : o.name + " (sets " + Join(o.sets, " and ") + ")");
  }
  return Join(names, ", ");
}

std::string CheckOptionValue(const OptionSpec& option, const json& value) {
  switch (option.type) {
    case OptionType::kInt: {
      const bool integral = value.is_number_integer() ||
                            (value.is_number_float() && std::isfinite(value.get<double>()) &&
                             std::floor(value.get<double>()) == value.get<double>());
      if (!integral) return "must be an integer, got " + value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      break;
    }
    case OptionType::kNumber:
      if (!value.is_number() || !std::isfinite(value.get<double>())) return "must be a number, got " + value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      break;
    case OptionType::kBool:
      return value.is_boolean() ? "" : "must be true or false, got " + value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    case OptionType::kChoice:
      for (const std::string& c : option.choices) {
        if (value.is_string() && value.get<std::string>() == c) return "";
      }
      return "must be one of " + Join(option.choices, ", ") + ", got " + value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  const double v = value.get<double>();
  if (option.min && (option.min_exclusive ? v <= *option.min : v < *option.min)) {
    return std::string("must be ") + (option.min_exclusive ? "greater than " : "at least ") + NumberText(*option.min) +
           ", got " + value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  if (option.max && v > *option.max) return "must be at most " + NumberText(*option.max) + ", got " + value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return "";
}

std::vector<std::string> AliasTargets(const std::string& key) {
  for (const MethodInfo* m : Methods()) {
    const OptionSpec* o = FindOption(*m, key);
    if (o != nullptr && !o->sets.empty()) return o->sets;
  }
  return {};
}

Result<MethodSettings> Resolve(const json& settings) {
  if (!settings.is_object() || !settings.contains("method") || !settings["method"].is_string()) {
    return Status::InvalidArgument("adapter settings need a string 'method', got " + settings.dump());
  }
  const std::string name = settings["method"].get<std::string>();
  const MethodInfo* method = FindMethod(name);
  if (method == nullptr) {
    return Status::InvalidArgument("unknown adapter method '" + name + "'; known: " + MethodNames());
  }
  json resolved = json::object();
  resolved["method"] = name;
  std::map<std::string, std::string> set_by;  // target option -> the alias that set it
  for (const auto& [key, value] : settings.items()) {
    if (key == "method") continue;
    const OptionSpec* option = FindOption(*method, key);
    if (option == nullptr) {
      return Status::InvalidArgument("unknown option '" + key + "' of " + name + "; known options: " +
                                     OptionNames(*method));
    }
    if (value.is_null()) continue;
    if (std::string err = CheckOptionValue(*option, value); !err.empty()) {
      return Status::InvalidArgument(name + " option '" + key + "' " + err);
    }
    if (option->sets.empty()) {
      if (auto it = set_by.find(key); it != set_by.end()) {
        return Status::InvalidArgument(name + " options '" + it->second + "' and '" + key +
                                       "' both set " + key + "; give one of them");
      }
      resolved[key] = value;
      continue;
    }
    for (const std::string& target : option->sets) {
      if (settings.contains(target) && !settings[target].is_null()) {
        return Status::InvalidArgument(name + " options '" + key + "' and '" + target + "' both set " + target +
                                       "; give one of them");
      }
      set_by[target] = key;
      resolved[target] = value;
    }
  }
  return MethodSettings(*method, std::move(resolved));
}

json WithOption(const json& settings, const std::string& key, const json& value) {
  json s = settings;
  const MethodInfo* m = settings.is_object() && settings.contains("method") && settings["method"].is_string()
                            ? FindMethod(settings["method"].get<std::string>())
                            : nullptr;
  const OptionSpec* o = m == nullptr ? nullptr : FindOption(*m, key);
  if (o == nullptr || o->sets.empty()) {
    s[key] = value;
    return s;
  }
  s.erase(key);
  for (const std::string& t : o->sets) s[t] = value;
  return s;
}

bool GivesOption(const json& settings, const std::string& key) {
  if (!settings.is_object()) return false;
  auto given = [&](const std::string& k) { return settings.contains(k) && !settings[k].is_null(); };
  if (given(key)) return true;
  for (const std::string& t : AliasTargets(key)) {
    if (given(t)) return true;
  }
  return false;
}

}  // namespace sweepd::methods
