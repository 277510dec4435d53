// Writes and reads PEFT 0.21 adapter folders through the method registry: the fields of a
// method's config class and their mapping are declared by the method (MethodInfo::peft_*);
// a folder is accepted only when rewriting its settings gives back its own fields. Methods
// PEFT lacks get a folder of the same shape: peft_type their name, their options as fields.
#include "worker/trainer/peft_folder.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "common/methods/peft_layout.h"
#include "common/methods/registry.h"
#include "common/version.h"
#include "worker/failures.h"
#include "worker/io/safetensors.h"
#include "worker/trainer/checkpoint.h"

namespace sweepd::trainer {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

methods::MethodSettings Resolved(const json& settings, const std::string& where) {
  Result<methods::MethodSettings> s = methods::Resolve(settings);
  if (!s.ok()) throw InvalidInput(where + s.status().message());
  return *s;
}

// The method's fields of adapter_config.json: its config class's defaults, then its values.
json MethodFields(const methods::MethodSettings& s, const methods::PeftContext& context, const std::string& where) {
  Result<json> values = s.method().to_peft(s, context);
  if (!values.ok()) throw InvalidInput(where + values.status().message());
  json fields = s.method().peft_fields;
  fields.update(*values);
  return fields;
}

// The peft_type of a method PEFT lacks: its name in capitals ("SORA", "PRE_DIAG").
std::string OwnType(const methods::MethodInfo& m) {
  std::string type = m.name;
  for (char& ch : type) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return type;
}

bool HasOwnLayout(const methods::MethodInfo& m) { return m.peft_type.empty(); }

const methods::MethodInfo* PeftReader(const std::string& type) {
  for (const methods::MethodInfo* m : methods::Methods()) {
    if (m->peft_type == type && m->from_peft) return m;
  }
  return nullptr;
}

const methods::MethodInfo* OwnReader(const std::string& type) {
  for (const methods::MethodInfo* m : methods::Methods()) {
    if (HasOwnLayout(*m) && OwnType(*m) == type) return m;
  }
  return nullptr;
}

std::string PeftTypes() {
  std::string out;
  for (const methods::MethodInfo* m : methods::Methods()) {
    if (m->from_peft) out += (out.empty() ? "" : ", ") + m->peft_type;
    if (HasOwnLayout(*m)) out += (out.empty() ? "" : ", ") + OwnType(*m);
  }
  return out;
}

// Our own layout's fields: PeftConfig's, the version that wrote it, every option of the
// method with its value (declared defaults filled in; aliases left out).
json OwnFields(const methods::MethodSettings& s) {
  json fields = methods::PeftBaseFields();
  fields["peft_type"] = OwnType(s.method());
  fields["peft_version"] = nullptr;
  fields["sweepd_version"] = std::string("sweep-train ") + SWEEPD_VERSION;
  for (const methods::OptionSpec& o : s.method().options) {
    if (!o.sets.empty()) continue;
    if (s.Has(o.name)) {
      fields[o.name] = s.json()[o.name];
    } else if (!o.default_value.is_null()) {
      fields[o.name] = o.default_value;
    }
  }
  return fields;
}

void WriteConfig(const std::string& folder, const json& config) {
  std::ofstream out(fs::path(folder) / "adapter_config.json");
  out << config.dump(2) << "\n";
  if (!out) throw IoError(IoErrorText(folder + "/adapter_config.json", "cannot write"));
}

json TargetsJson(const std::vector<std::string>& t) {
  return t.size() == 1 && t[0] == "all-linear" ? json("all-linear") : json(t);
}

std::string Keys(const json& fields) {
  std::string out;
  for (const auto& [k, v] : fields.items()) out += (out.empty() ? "" : ", ") + k;
  return out;
}

}  // namespace

bool HasPeftLayout(const json& settings) { return methods::Resolve(settings).ok(); }

void WritePeftFolder(const std::string& folder, const json& settings, const methods::PeftContext& context,
                     const AdapterSet& adapters, const std::string& base_model) {
  const std::string where = folder + ": ";
  const methods::MethodSettings s = Resolved(settings, where);
  if (HasOwnLayout(s.method())) {
    // Trainable tensors and the state that rebuilds the adapter (JORA's pairs, SORSA's split).
    json config = OwnFields(s);
    config["base_model_name_or_path"] = base_model.empty() ? json(nullptr) : json(base_model);
    config["target_modules"] = TargetsJson(context.targets);
    fs::create_directories(folder);
    io::SaveSafetensors((fs::path(folder) / "adapter_model.safetensors").string(), adapters.Tensors(true),
                        {{"format", "pt"}});
    WriteConfig(folder, config);
    return;
  }
  if (!s.method().to_peft) throw InvalidInput(where + "method '" + s.method().name + "' has no PEFT layout");
  json config = methods::PeftBaseFields();
  config.update(MethodFields(s, context, where));
  config["peft_type"] = s.method().peft_type;
  config["base_model_name_or_path"] = base_model.empty() ? json(nullptr) : json(base_model);
  config["target_modules"] = TargetsJson(context.targets);
  fs::create_directories(folder);
  io::SaveSafetensors((fs::path(folder) / "adapter_model.safetensors").string(), adapters.PeftTensors(),
                      {{"format", "pt"}});
  WriteConfig(folder, config);
}

namespace {

methods::PeftContext JobContext(const JobConfig& config) {
  methods::PeftContext context;
  context.targets = TrackModules(config.track);
  context.total_steps = config.train.steps;
  return context;
}

}  // namespace

bool HasPeftLayout(const JobConfig& config) {
  Result<methods::MethodSettings> s = methods::Resolve(config.adapter);
  if (!s.ok()) return false;
  if (HasOwnLayout(s->method())) return true;
  return s->method().to_peft && s->method().to_peft(*s, JobContext(config)).ok();
}

void WritePeftFolder(const std::string& folder, const JobConfig& config, const AdapterSet& adapters) {
  WritePeftFolder(folder, config.adapter, JobContext(config), adapters, config.model.source);
}

PeftAdapter ReadPeftConfig(const std::string& folder) {
  const std::string path = (fs::path(folder) / "adapter_config.json").string();
  const std::string where = path + ": ";
  std::ifstream in(path);
  if (!in) throw InvalidInput(where + "cannot open (a PEFT adapter folder holds adapter_config.json)");
  json c;
  try {
    c = json::parse(in);
  } catch (const json::parse_error& e) {
    throw InvalidInput(where + "not valid JSON (" + e.what() + ")");
  }
  if (!c.is_object()) throw InvalidInput(where + "must be a JSON object");
  const std::string type = c.value("peft_type", json("")).is_string() ? c.value("peft_type", "") : "";
  if (const methods::MethodInfo* own = OwnReader(type)) {
    json settings = {{"method", own->name}};
    const json base = methods::PeftBaseFields();
    for (const auto& [key, value] : c.items()) {
      if (!base.contains(key) && key != "sweepd_version") settings[key] = value;
    }
    Result<std::vector<std::string>> targets = methods::PeftTargets(c);
    if (!targets.ok()) throw InvalidInput(where + targets.status().message());
    PeftAdapter a;
    a.settings = Resolved(settings, where).json();  // an unknown key: named, with the method's options
    a.context.targets = *targets;
    a.track.name = "peft";
    a.track.modules = *targets;
    a.own_layout = true;
    return a;
  }
  const methods::MethodInfo* method = PeftReader(type);
  if (method == nullptr) {
    throw InvalidInput(where + "peft_type '" + type + "' is not one sweep-train reads (" + PeftTypes() + ")");
  }
  const json base = methods::PeftBaseFields();
  for (const auto& [key, value] : c.items()) {
    if (!base.contains(key) && !method->peft_fields.contains(key)) {
      throw InvalidInput(where + "unknown PEFT key '" + key + "' for peft_type " + type +
                                  " (PEFT 0.21 knows: " + Keys(base) + ", " + Keys(method->peft_fields) + ")");
    }
  }
  Result<methods::PeftSettings> read = method->from_peft(c);
  if (!read.ok()) throw InvalidInput(where + read.status().message());
  Result<std::vector<std::string>> targets = methods::PeftTargets(c);
  if (!targets.ok()) throw InvalidInput(where + targets.status().message());
  read->context.targets = *targets;
  const methods::MethodSettings s = Resolved(read->settings, where);
  // Every field must be what sweep-train writes for these settings: a value it reads past
  // (bias "lora_only", OFT's block_share true, a LoftQ init) would build another adapter.
  const json rewritten = MethodFields(s, read->context, where);
  for (const auto& [key, expected] : rewritten.items()) {
    const json& given = c.contains(key) ? c[key] : method->peft_fields[key];
    if (given != expected) {
      throw InvalidInput(where + key + " is " + given.dump() + "; sweep-train's " + s.method().name +
                                  " builds only " + expected.dump() + " for these settings");
    }
  }
  PeftAdapter a;
  a.settings = s.json();
  a.context = read->context;
  a.track.name = "peft";
  a.track.modules = *targets;
  return a;
}

void CheckSameAdapter(const std::string& folder, const PeftAdapter& read, const json& expected) {
  const methods::MethodSettings want = Resolved(expected, folder + ": ");
  const methods::MethodSettings got = Resolved(read.settings, folder + ": ");
  // LoRA-layout methods share PEFT's LORA type: compare the adapters they build.
  const auto built = [](const methods::MethodSettings& s) { return s.method().adapter ? s.method().adapter(s) : s.method().name; };
  if (built(want) != built(got) || want.method().peft_type != got.method().peft_type) {
    throw InvalidInput(folder + ": a " + got.method().name + " adapter, but the job's adapter is " +
                                want.method().name);
  }
  const auto fields = [&](const methods::MethodSettings& s) {
    return HasOwnLayout(s.method()) ? OwnFields(s) : MethodFields(s, read.context, folder + ": ");
  };
  const json want_fields = fields(want), got_fields = fields(got);
  for (const auto& [key, value] : want_fields.items()) {
    if (got_fields.value(key, json()) != value) {
      throw InvalidInput(folder + ": " + key + " is " + got_fields.value(key, json()).dump() +
                                  " in the folder, " + value.dump() + " in the job's adapter settings");
    }
  }
}

AdapterSet LoadPeftFolder(const std::string& folder, models::LlamaForCausalLM& model) {
  PeftAdapter peft = ReadPeftConfig(folder);
  AdapterSet set = AdapterSet::Attach(model, peft.settings, peft.track);
  const std::string file = (fs::path(folder) / "adapter_model.safetensors").string();
  if (!fs::exists(file)) throw InvalidInput(file + ": missing (a PEFT adapter folder holds it)");
  if (peft.own_layout) {
    set.Load(ReadAllTensors(file), file);
  } else {
    set.LoadPeft(ReadAllTensors(file), file);
  }
  return set;
}

}  // namespace sweepd::trainer
