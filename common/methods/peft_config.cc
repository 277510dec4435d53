// adapter_config.json through the method registry (peft_config.h): the fields of a method's
// config class and their mapping are declared by the method (MethodInfo::peft_*); a folder is
// accepted only when rewriting its settings gives back its own fields. Methods PEFT lacks get
// a config of the same shape: peft_type their name, their options as fields.
#include "common/methods/peft_config.h"

#include <cctype>
#include <filesystem>
#include <fstream>

#include "common/methods/peft_layout.h"
#include "common/methods/registry.h"
#include "common/version.h"

namespace sweepd::methods {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The method's fields of adapter_config.json: its config class's defaults, then its values.
Result<json> MethodFields(const MethodSettings& s, const PeftContext& context) {
  Result<json> values = s.method().to_peft(s, context);
  if (!values.ok()) return values.status();
  json fields = s.method().peft_fields;
  fields.update(*values);
  return fields;
}

// The peft_type of a method PEFT lacks: its name in capitals ("SORA", "PRE_DIAG").
std::string OwnType(const MethodInfo& m) {
  std::string type = m.name;
  for (char& ch : type) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return type;
}

const MethodInfo* PeftReader(const std::string& type) {
  for (const MethodInfo* m : Methods()) {
    if (m->peft_type == type && m->from_peft) return m;
  }
  return nullptr;
}

const MethodInfo* OwnReader(const std::string& type) {
  for (const MethodInfo* m : Methods()) {
    if (HasOwnPeftLayout(*m) && OwnType(*m) == type) return m;
  }
  return nullptr;
}

std::string PeftTypes() {
  std::string out;
  for (const MethodInfo* m : Methods()) {
    if (m->from_peft) out += (out.empty() ? "" : ", ") + m->peft_type;
    if (HasOwnPeftLayout(*m)) out += (out.empty() ? "" : ", ") + OwnType(*m);
  }
  return out;
}

// Our own layout's fields: PeftConfig's, the version that wrote it, every option of the
// method with its value (declared defaults filled in; aliases left out).
json OwnFields(const MethodSettings& s) {
  json fields = PeftBaseFields();
  fields["peft_type"] = OwnType(s.method());
  fields["peft_version"] = nullptr;
  fields["sweepd_version"] = std::string("sweep-train ") + SWEEPD_VERSION;
  for (const OptionSpec& o : s.method().options) {
    if (!o.sets.empty()) continue;
    if (s.Has(o.name)) {
      fields[o.name] = s.json()[o.name];
    } else if (!o.default_value.is_null()) {
      fields[o.name] = o.default_value;
    }
  }
  return fields;
}

json TargetsJson(const std::vector<std::string>& t) {
  return t.size() == 1 && t[0] == "all-linear" ? json("all-linear") : json(t);
}

std::string Keys(const json& fields) {
  std::string out;
  for (const auto& [k, v] : fields.items()) out += (out.empty() ? "" : ", ") + k;
  return out;
}

Status Prefixed(const std::string& where, const Status& s) { return Status::InvalidArgument(where + s.message()); }

}  // namespace

bool HasOwnPeftLayout(const MethodInfo& m) { return m.peft_type.empty(); }

Result<json> PeftConfigFor(const MethodSettings& s, const PeftContext& context, const std::string& base_model) {
  json config;
  if (HasOwnPeftLayout(s.method())) {
    config = OwnFields(s);
  } else {
    if (!s.method().to_peft) return Status::InvalidArgument("method '" + s.method().name + "' has no PEFT layout");
    Result<json> fields = MethodFields(s, context);
    if (!fields.ok()) return fields.status();
    config = PeftBaseFields();
    config.update(*fields);
    config["peft_type"] = s.method().peft_type;
  }
  config["base_model_name_or_path"] = base_model.empty() ? json(nullptr) : json(base_model);
  config["target_modules"] = TargetsJson(context.targets);
  return config;
}

Result<PeftConfigRead> ReadPeftConfigFile(const std::string& folder) {
  const std::string path = (fs::path(folder) / "adapter_config.json").string();
  const std::string where = path + ": ";
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument(where + "cannot open (a PEFT adapter folder holds adapter_config.json)");
  json c;
  try {
    c = json::parse(in);
  } catch (const json::parse_error& e) {
    return Status::InvalidArgument(where + "not valid JSON (" + e.what() + ")");
  }
  if (!c.is_object()) return Status::InvalidArgument(where + "must be a JSON object");
  const std::string type = c.value("peft_type", json("")).is_string() ? c.value("peft_type", "") : "";
  Result<std::vector<std::string>> targets = PeftTargets(c);
  if (const MethodInfo* own = OwnReader(type)) {
    json settings = {{"method", own->name}};
    const json base = PeftBaseFields();
    for (const auto& [key, value] : c.items()) {
      if (!base.contains(key) && key != "sweepd_version") settings[key] = value;
    }
    if (!targets.ok()) return Prefixed(where, targets.status());
    Result<MethodSettings> s = Resolve(settings);  // an unknown key: named, with the method's options
    if (!s.ok()) return Prefixed(where, s.status());
    PeftConfigRead a;
    a.settings = s->json();
    a.context.targets = *targets;
    a.own_layout = true;
    return a;
  }
  const MethodInfo* method = PeftReader(type);
  if (method == nullptr) {
    return Status::InvalidArgument(where + "peft_type '" + type + "' is not one sweep-train reads (" + PeftTypes() +
                                   ")");
  }
  const json base = PeftBaseFields();
  for (const auto& [key, value] : c.items()) {
    if (!base.contains(key) && !method->peft_fields.contains(key)) {
      return Status::InvalidArgument(where + "unknown PEFT key '" + key + "' for peft_type " + type +
                                     " (PEFT 0.21 knows: " + Keys(base) + ", " + Keys(method->peft_fields) + ")");
    }
  }
  Result<PeftSettings> read = method->from_peft(c);
  if (!read.ok()) return Prefixed(where, read.status());
  if (!targets.ok()) return Prefixed(where, targets.status());
  read->context.targets = *targets;
  Result<MethodSettings> s = Resolve(read->settings);
  if (!s.ok()) return Prefixed(where, s.status());
  // Every field must be what sweep-train writes for these settings: a value it reads past
  // (bias "lora_only", OFT's block_share true, a LoftQ init) would build another adapter.
  Result<json> rewritten = MethodFields(*s, read->context);
  if (!rewritten.ok()) return Prefixed(where, rewritten.status());
  for (const auto& [key, expected] : rewritten->items()) {
    const json& given = c.contains(key) ? c[key] : method->peft_fields[key];
    if (given != expected) {
      return Status::InvalidArgument(where + key + " is " + given.dump() + "; sweep-train's " + s->method().name +
                                     " builds only " + expected.dump() + " for these settings");
    }
  }
  PeftConfigRead a;
  a.settings = s->json();
  a.context = read->context;
  return a;
}

Status CheckSameSettings(const std::string& folder, const PeftConfigRead& read, const json& expected) {
  const std::string where = folder + ": ";
  Result<MethodSettings> want = Resolve(expected);
  if (!want.ok()) return Prefixed(where, want.status());
  Result<MethodSettings> got = Resolve(read.settings);
  if (!got.ok()) return Prefixed(where, got.status());
  // LoRA-layout methods share PEFT's LORA type: compare the adapters they build.
  const auto built = [](const MethodSettings& s) { return s.method().adapter ? s.method().adapter(s) : s.method().name; };
  if (built(*want) != built(*got) || want->method().peft_type != got->method().peft_type) {
    return Status::InvalidArgument(where + "a " + got->method().name + " adapter, but the job's adapter is " +
                                   want->method().name);
  }
  const auto fields = [&](const MethodSettings& s) -> Result<json> {
    if (HasOwnPeftLayout(s.method())) return OwnFields(s);
    return MethodFields(s, read.context);
  };
  Result<json> want_fields = fields(*want), got_fields = fields(*got);
  if (!want_fields.ok()) return Prefixed(where, want_fields.status());
  if (!got_fields.ok()) return Prefixed(where, got_fields.status());
  for (const auto& [key, value] : want_fields->items()) {
    if (got_fields->value(key, json()) != value) {
      return Status::InvalidArgument(where + key + " is " + got_fields->value(key, json()).dump() +
                                     " in the folder, " + value.dump() + " in the job's adapter settings");
    }
  }
  return Status::Ok();
}

}  // namespace sweepd::methods
