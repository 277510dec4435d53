// YAML to SweepDocument with yaml-cpp. Reading never stops at the first problem: each
// field is checked on its own and every problem is recorded with its YAML mark, so a
// researcher fixes a spec in one round trip.
#include "spec/sweep_document.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <regex>
#include <set>

#include <yaml-cpp/yaml.h>

#include "common/byte_size.h"
#include "common/eval_settings.h"
#include "common/methods/registry.h"
#include "spec/spec_text.h"

namespace sweepd::spec {
namespace {

using nlohmann::json;

// Keys of a method block that are not adapter options (train keys may be swept per block).
const std::set<std::string>& BlockKeys() {
  static const auto* keys = new std::set<std::string>{"method", "budget", "match", "lr", "lr_theta", "lr_core"};
  return *keys;
}

// Whether `method` trains tensors with the per-group learning rate `key` (JORA's lr_theta).
bool UsesTrainLr(const methods::MethodInfo& method, const std::string& key) {
  return std::find(method.train_lr_keys.begin(), method.train_lr_keys.end(), key) != method.train_lr_keys.end();
}

// The methods that have the alias `key` (JORA's S), for messages; empty when none has.
std::string MethodsWithAlias(const std::string& key) {
  std::string names;
  for (const methods::MethodInfo* m : methods::Methods()) {
    const methods::OptionSpec* o = methods::FindOption(*m, key);
    if (o != nullptr && !o->sets.empty()) names += (names.empty() ? "" : ", ") + m->name;
  }
  return names;
}

// The methods that use the per-group learning rate `key`, for messages.
std::string MethodsUsingTrainLr(const std::string& key) {
  std::string names;
  for (const methods::MethodInfo* m : methods::Methods()) {
    if (UsesTrainLr(*m, key)) names += (names.empty() ? "" : ", ") + m->name;
  }
  return names;
}

// What a message quotes of a scalar the spec wrote: ", got 'TEXT'", cut short.
std::string Got(const YAML::Node& node) {
  return node.IsScalar() ? ", got '" + Excerpt(node.Scalar()) + "'" : "";
}

// Option values are counts and sizes of layers: a value beyond 32 bits is a typo, and
// parameter counts of it would overflow.
constexpr int64_t kMaxOptionInteger = std::numeric_limits<int32_t>::max();

// "" when `v` is no integer or one an option may hold; else the problem.
std::string OptionIntegerRange(const json& v) {
  if (!v.is_number_integer()) return "";
  const int64_t i = v.get<int64_t>();
  if (i >= -kMaxOptionInteger && i <= kMaxOptionInteger) return "";
  return "must be between -" + std::to_string(kMaxOptionInteger) + " and " + std::to_string(kMaxOptionInteger) +
         ", got " + v.dump();
}

class DocumentReader {
 public:
  DocumentReader(std::string file, std::vector<SpecProblem>& problems)
      : file_(std::move(file)), problems_(problems) {}

  SweepDocument Read(const YAML::Node& root);
  size_t omitted() const { return omitted_; }

 private:
  Location Where(const YAML::Node& node, const std::string& field) const {
    const YAML::Mark m = node.Mark();
    if (m.is_null()) return {0, 0, field};
    return {m.line + 1, m.column + 1, field};
  }
  // Stores the first kMaxReportedProblems problems and counts the rest: a spec of a
  // million bad entries must not hold a million messages.
  void Problem(const Location& where, const std::string& message) {
    if (problems_.size() >= kMaxReportedProblems) {
      ++omitted_;
      return;
    }
    problems_.push_back({file_, where.line, where.column, Excerpt(where.field, kMaxProblemFieldBytes),
                         Excerpt(message, kMaxProblemMessageBytes)});
  }
  void Problem(const YAML::Node& node, const std::string& field, const std::string& message) {
    Problem(Where(node, field), message);
  }

  // Reports keys of `map` that are not in `allowed`; false when `map` is not a map.
  bool CheckMap(const YAML::Node& map, const std::string& field, const std::set<std::string>& allowed);
  json Scalar(const YAML::Node& node) const;
  std::optional<std::string> String(const YAML::Node& node, const std::string& field);
  // An integer in [min, max]; one out of range is a problem, never truncated.
  std::optional<int64_t> Int(const YAML::Node& node, const std::string& field, int64_t min,
                             int64_t max = std::numeric_limits<int64_t>::max());
  std::optional<double> Number(const YAML::Node& node, const std::string& field, double min,
                               double max);
  std::optional<std::string> Choice(const YAML::Node& node, const std::string& field,
                                    const std::vector<std::string>& choices);

  void ReadBase(const YAML::Node& node, SweepDocument& doc);
  void ReadTracks(const YAML::Node& node, SweepDocument& doc);
  std::optional<BudgetReference> ReadBudget(const YAML::Node& node, const std::string& field);
  void ReadTrain(const YAML::Node& node, TrainSpec& train);
  void ReadEval(const YAML::Node& node, SweepDocument& doc);
  void ReadSeeds(const YAML::Node& node, SweepDocument& doc);
  void ReadResources(const YAML::Node& node, SweepDocument& doc);
  void ReadMerge(const YAML::Node& node, const YAML::Node& root, SweepDocument& doc);
  void ReadMethods(const YAML::Node& node, SweepDocument& doc);
  std::optional<MethodBlock> ReadBlock(const YAML::Node& node, const std::string& field);
  void CheckAxisValue(const std::string& method, const std::string& key, const json& value,
                      const Location& where);

  std::string file_;
  std::vector<SpecProblem>& problems_;
  size_t omitted_ = 0;
};

bool DocumentReader::CheckMap(const YAML::Node& map, const std::string& field,
                              const std::set<std::string>& allowed) {
  if (!map.IsMap()) {
    Problem(map, field, "must be a mapping of keys to values");
    return false;
  }
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    if (allowed.count(key)) continue;
    std::string list;
    for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
    Problem(kv.first, field.empty() ? key : field + "." + key, "unknown key; known keys: " + list);
  }
  return true;
}

json DocumentReader::Scalar(const YAML::Node& node) const {
  if (node.IsNull()) return nullptr;
  const std::string text = node.Scalar();
  if (node.Tag() == "!") return text;  // quoted: always a string
  int64_t i = 0;
  if (YAML::convert<int64_t>::decode(node, i)) return i;
  double d = 0;
  if (YAML::convert<double>::decode(node, d)) return d;
  bool b = false;
  if (YAML::convert<bool>::decode(node, b)) return b;
  return text;
}

std::optional<std::string> DocumentReader::String(const YAML::Node& node, const std::string& field) {
  if (!node.IsScalar() || node.Scalar().empty()) {
    Problem(node, field, "must be a non-empty string");
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<int64_t> DocumentReader::Int(const YAML::Node& node, const std::string& field,
                                           int64_t min, int64_t max) {
  const json v = node.IsScalar() ? Scalar(node) : json();
  if (!v.is_number_integer()) {
    Problem(node, field, "must be an integer" + Got(node));
    return std::nullopt;
  }
  if (v.get<int64_t>() < min) {
    Problem(node, field, "must be at least " + std::to_string(min) + ", got " + v.dump());
    return std::nullopt;
  }
  if (v.get<int64_t>() > max) {
    Problem(node, field, "must be at most " + std::to_string(max) + ", got " + v.dump());
    return std::nullopt;
  }
  return v.get<int64_t>();
}

std::optional<double> DocumentReader::Number(const YAML::Node& node, const std::string& field,
                                             double min, double max) {
  const json v = node.IsScalar() ? Scalar(node) : json();
  if (!v.is_number() || !std::isfinite(v.get<double>())) {
    Problem(node, field, "must be a number" + Got(node));
    return std::nullopt;
  }
  const double d = v.get<double>();
  if (d < min || d > max) {
    Problem(node, field, "must be between " + json(min).dump() + " and " + json(max).dump() +
                             ", got " + Excerpt(node.Scalar()));
    return std::nullopt;
  }
  return d;
}

std::optional<std::string> DocumentReader::Choice(const YAML::Node& node, const std::string& field,
                                                  const std::vector<std::string>& choices) {
  std::string list;
  for (const std::string& c : choices) {
    if (node.IsScalar() && node.Scalar() == c) return c;
    list += (list.empty() ? "" : ", ") + c;
  }
  Problem(node, field,
          "must be one of " + list + Got(node));
  return std::nullopt;
}

SweepDocument DocumentReader::Read(const YAML::Node& root) {
  SweepDocument doc;
  if (!CheckMap(root, "",
                {"name", "base", "tracks", "budget", "train", "eval", "tradeoff", "seeds", "methods",
                 "resources", "priority", "max_attempts", "output_dir", "merge"})) {
    return doc;
  }
  static const std::regex kName("[a-z0-9][a-z0-9-]*");
  if (!root["name"]) {
    Problem(root, "name", "missing; name the sweep with lowercase letters, digits and '-'");
  } else if (auto name = String(root["name"], "name")) {
    // The length first: std::regex recurses per character and a long name overflows the stack.
    if (name->size() > 64 || !std::regex_match(*name, kName)) {
      const std::string shown = Excerpt(*name);
      Problem(root["name"], "name",
              "'" + shown + "' is not a valid sweep name: use 1-64 of [a-z0-9-], starting with a letter or digit");
    } else {
      doc.name = *name;
    }
  }
  if (root["base"]) ReadBase(root["base"], doc);
  else Problem(root, "base", "missing; e.g. base: {model: synthetic:tiny}");
  if (root["tracks"]) ReadTracks(root["tracks"], doc);
  else doc.tracks.push_back({TrackSpec{"A", {"q_proj", "v_proj"}}, Where(root, "tracks")});
  if (root["budget"]) doc.budget = ReadBudget(root["budget"], "budget");
  if (root["train"]) ReadTrain(root["train"], doc.train);
  if (root["eval"]) ReadEval(root["eval"], doc);
  if (root["tradeoff"] && CheckMap(root["tradeoff"], "tradeoff", {"lambda"}) &&
      root["tradeoff"]["lambda"]) {
    if (auto l = Number(root["tradeoff"]["lambda"], "tradeoff.lambda", 0, 1e6)) doc.tradeoff_lambda = *l;
  }
  if (root["seeds"]) ReadSeeds(root["seeds"], doc);
  else doc.seeds = {0};
  if (root["resources"]) ReadResources(root["resources"], doc);
  if (root["priority"]) {
    if (auto p = Int(root["priority"], "priority", -1000000, 1000000)) doc.priority = static_cast<int>(*p);
  }
  if (root["max_attempts"]) {
    if (auto m = Int(root["max_attempts"], "max_attempts", 1, 1000)) doc.max_attempts = static_cast<int>(*m);
  }
  if (root["methods"]) ReadMethods(root["methods"], doc);
  else Problem(root, "methods", "missing; list at least one method block, e.g. - {method: lora, r: 16}");
  if (root["output_dir"]) {
    if (auto dir = String(root["output_dir"], "output_dir")) {
      if ((*dir)[0] != '/') {
        Problem(root["output_dir"], "output_dir",
                "must be an absolute folder that the workers and sweepctl can reach, not '" + Excerpt(*dir) + "'");
      } else {
        doc.output_dir = *dir;
      }
    }
  }
  if (root["merge"]) ReadMerge(root["merge"], root, doc);
  return doc;
}

void DocumentReader::ReadMerge(const YAML::Node& node, const YAML::Node& root, SweepDocument& doc) {
  if (node.IsScalar() && node.Scalar() == "true") {
    doc.merge = MergeSpec{};
  } else if (CheckMap(node, "merge", {"dtype", "max_shard_size"})) {
    MergeSpec merge;
    if (node["dtype"]) {
      if (auto d = Choice(node["dtype"], "merge.dtype", {"float32", "bfloat16", "float16"})) merge.dtype = *d;
    }
    if (node["max_shard_size"]) {
      if (auto t = String(node["max_shard_size"], "merge.max_shard_size")) {
        if (Result<int64_t> size = ParseByteSize(*t); !size.ok()) {
          Problem(node["max_shard_size"], "merge.max_shard_size", size.status().message());
        } else {
          merge.max_shard_size = *t;
        }
      }
    }
    doc.merge = merge;
  } else {
    return;
  }
  if (!root["output_dir"]) {
    Problem(node, "merge",
            "needs output_dir: the train jobs leave their adapters there and the merge jobs read them from there");
  }
  if (doc.model.source.rfind("synthetic:", 0) == 0) {
    Problem(node, "merge", "needs a Hugging Face model folder as base.model; '" + doc.model.source +
                               "' is built in and has no folder to merge into");
  }
}

void DocumentReader::ReadBase(const YAML::Node& node, SweepDocument& doc) {
  if (!CheckMap(node, "base", {"model", "tokenizer", "dtype", "chat_template"})) return;
  doc.model_where = Where(node, "base.model");
  if (!node["model"]) {
    Problem(node, "base.model", "missing; synthetic:tiny or a Hugging Face checkpoint folder");
  } else if (auto m = String(node["model"], "base.model")) {
    doc.model.source = *m;
    doc.model_where = Where(node["model"], "base.model");
  }
  if (node["tokenizer"]) {
    if (auto t = String(node["tokenizer"], "base.tokenizer")) doc.model.tokenizer = *t;
  }
  if (node["chat_template"]) {
    if (auto t = String(node["chat_template"], "base.chat_template")) doc.model.chat_template = *t;
  }
  if (node["dtype"]) {
    if (auto d = Choice(node["dtype"], "base.dtype", {"float32", "bfloat16", "float16"})) {
      doc.model.dtype = *d;
    }
  }
}

void DocumentReader::ReadTracks(const YAML::Node& node, SweepDocument& doc) {
  if (!node.IsSequence() || node.size() == 0) {
    Problem(node, "tracks", "must be a non-empty list, e.g. [A] or [A, B]");
    return;
  }
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node t = node[i];
    const std::string field = "tracks[" + std::to_string(i) + "]";
    if (t.IsScalar()) {
      if (t.Scalar() == "A") doc.tracks.push_back({TrackSpec{"A", {"q_proj", "v_proj"}}, Where(t, field)});
      else if (t.Scalar() == "B") doc.tracks.push_back({TrackSpec{"B", {"all-linear"}}, Where(t, field)});
      else Problem(t, field, "unknown track '" + Excerpt(t.Scalar()) + "'; use A, B, or {name: x, modules: [...]}");
      continue;
    }
    if (!CheckMap(t, field, {"name", "modules"})) continue;
    TrackSpec track;
    std::optional<std::string> name;
    if (t["name"]) name = String(t["name"], field + ".name");
    else Problem(t, field + ".name", "missing; give the track a name");
    const YAML::Node mods = t["modules"];
    if (!mods || !mods.IsSequence() || mods.size() == 0) {
      Problem(mods ? mods : t, field + ".modules", "must be a non-empty list of module names, e.g. [q_proj, v_proj]");
      continue;
    }
    bool ok = name.has_value();
    for (size_t k = 0; k < mods.size(); ++k) {
      auto m = String(mods[k], field + ".modules[" + std::to_string(k) + "]");
      if (m) track.modules.push_back(*m);
      else ok = false;
    }
    if (!ok) continue;
    track.name = *name;
    doc.tracks.push_back({track, Where(t, field)});
  }
  std::set<std::string> seen;
  for (const TrackEntry& t : doc.tracks) {
    if (!seen.insert(t.track.name).second) Problem(t.where, "track '" + t.track.name + "' is listed twice");
  }
}

std::optional<BudgetReference> DocumentReader::ReadBudget(const YAML::Node& node,
                                                          const std::string& field) {
  if (!CheckMap(node, field, {"reference", "tolerance"})) return std::nullopt;
  BudgetReference b;
  b.where = Where(node, field);
  const YAML::Node ref = node["reference"];
  if (!ref) {
    Problem(node, field + ".reference", "missing; e.g. reference: {method: lora, r: 16}");
    return std::nullopt;
  }
  if (!ref.IsMap()) {
    Problem(ref, field + ".reference", "must be a method setting, e.g. {method: lora, r: 16}");
    return std::nullopt;
  }
  b.settings = json::object();
  bool ok = true;
  std::string method;
  const methods::MethodInfo* info = nullptr;
  if (!ref["method"]) {
    Problem(ref, field + ".reference.method", "missing");
    ok = false;
  } else if (auto m = String(ref["method"], field + ".reference.method")) {
    method = *m;
    info = methods::FindMethod(method);
    if (info == nullptr) {
      Problem(ref["method"], field + ".reference.method", "unknown method '" + Excerpt(method) + "'");
      ok = false;
    }
  } else {
    ok = false;
  }
  for (const auto& kv : ref) {
    const std::string key = kv.first.as<std::string>();
    if (key == "method") continue;
    const std::string f = field + ".reference." + key;
    if (!kv.second.IsScalar()) {
      Problem(kv.second, f, "must be a single value");
      ok = false;
      continue;
    }
    const json v = Scalar(kv.second);
    if (std::string err = OptionIntegerRange(v); !err.empty()) {
      Problem(kv.second, f, err);
      ok = false;
      continue;
    }
    if (info != nullptr) {
      const methods::OptionSpec* opt = methods::FindOption(*info, key);
      if (!opt) {
        Problem(kv.first, f, "unknown option of " + method + "; known: " + methods::OptionNames(*info));
        ok = false;
        continue;
      }
      if (std::string err = methods::CheckOptionValue(*opt, v); !err.empty()) {
        Problem(kv.second, f, err);
        ok = false;
        continue;
      }
    }
    b.settings[key] = v;
  }
  b.settings["method"] = method;
  if (ok && info != nullptr) {  // aliases replaced by what they set (S -> S_L, S_R)
    Result<methods::MethodSettings> resolved = methods::Resolve(b.settings);
    if (resolved.ok()) {
      b.settings = resolved->json();
    } else {
      Problem(ref, field + ".reference", resolved.status().message());
      ok = false;
    }
  }
  if (node["tolerance"]) {
    auto t = Number(node["tolerance"], field + ".tolerance", 0, 10);
    if (t) b.tolerance = *t;
    else ok = false;
  }
  if (!ok) return std::nullopt;
  return b;
}

void DocumentReader::ReadTrain(const YAML::Node& node, TrainSpec& t) {
  if (!CheckMap(node, "train",
                {"data", "steps", "lr", "schedule", "warmup_ratio", "seq_len", "tokens_per_update",
                 "micro_batch", "weight_decay", "grad_clip", "lr_theta", "lr_core", "log_every",
                 "checkpoint_every", "eval_every", "spectrum_every"})) {
    return;
  }
  auto str = [&](const char* key, std::string& out) {
    if (node[key]) {
      if (auto v = String(node[key], std::string("train.") + key)) out = *v;
    }
  };
  auto integer = [&](const char* key, int64_t min, int64_t& out) {
    if (node[key]) {
      if (auto v = Int(node[key], std::string("train.") + key, min)) out = *v;
    }
  };
  auto number = [&](const char* key, double min, double max, double& out) {
    if (node[key]) {
      if (auto v = Number(node[key], std::string("train.") + key, min, max)) out = *v;
    }
  };
  auto optional_number = [&](const char* key, std::optional<double>& out) {
    if (node[key]) {
      if (auto v = Number(node[key], std::string("train.") + key, 0, 100)) out = *v;
    }
  };
  str("data", t.data);
  integer("steps", 1, t.steps);
  number("lr", 0, 100, t.lr);
  if (node["schedule"]) {
    if (auto s = Choice(node["schedule"], "train.schedule", {"cosine", "linear", "constant"})) {
      t.schedule = *s;
    }
  }
  number("warmup_ratio", 0, 1, t.warmup_ratio);
  integer("seq_len", 1, t.seq_len);
  integer("tokens_per_update", 1, t.tokens_per_update);
  integer("micro_batch", 1, t.micro_batch);
  number("weight_decay", 0, 100, t.weight_decay);
  number("grad_clip", 0, 1e9, t.grad_clip);
  optional_number("lr_theta", t.lr_theta);
  optional_number("lr_core", t.lr_core);
  integer("log_every", 1, t.log_every);
  integer("checkpoint_every", 0, t.checkpoint_every);
  integer("eval_every", 0, t.eval_every);
  integer("spectrum_every", 0, t.spectrum_every);
}

void DocumentReader::ReadEval(const YAML::Node& node, SweepDocument& doc) {
  if (!node.IsSequence()) {
    Problem(node, "eval", "must be a list, e.g. - {task: gsm8k, data: synthetic:arith, role: stability}");
    return;
  }
  // Each entry is read by the same code as a job configuration's (common/eval_settings.h);
  // its problems are placed at the key they name.
  std::set<std::string> tasks, score_names;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node e = node[i];
    const std::string field = "eval[" + std::to_string(i) + "]";
    json entry = json::object();
    if (e.IsMap()) {
      for (const auto& kv : e) {
        const YAML::Node& v = kv.second;
        json value = Scalar(v);
        if (v.IsSequence()) {
          value = json::array();
          for (const auto& item : v) value.push_back(Scalar(item));
        } else if (v.IsMap()) {
          value = json::object();
        }
        entry[kv.first.as<std::string>()] = value;
      }
    } else {
      entry = nullptr;
    }
    std::vector<EvalProblem> problems;
    EvalSpec spec = ReadEvalSpec(entry, problems);
    for (const EvalProblem& p : problems) {
      const YAML::Node at = p.field.empty() || !e.IsMap() || !e[p.field] ? e : e[p.field];
      Problem(at, p.field.empty() ? field : field + "." + p.field, p.message);
    }
    if (!problems.empty()) continue;
    if (!tasks.insert(spec.task).second) {
      Problem(e["task"], field + ".task", "task '" + spec.task + "' is evaluated twice");
      continue;
    }
    if (!score_names.insert(ScoreName(spec)).second) {
      Problem(e["data"], field + ".data", "scores as '" + ScoreName(spec) +
                                              "' like an earlier entry (one synthetic set per kind); use other data");
      continue;
    }
    doc.eval.push_back(spec);
  }
}

void DocumentReader::ReadSeeds(const YAML::Node& node, SweepDocument& doc) {
  if (!node.IsSequence() || node.size() == 0) {
    Problem(node, "seeds", "must be a non-empty list of integers, e.g. [0, 1, 2]");
    return;
  }
  std::set<int64_t> seen;
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string field = "seeds[" + std::to_string(i) + "]";
    if (auto s = Int(node[i], field, 0)) {
      if (!seen.insert(*s).second) Problem(node[i], field, "seed " + std::to_string(*s) + " is listed twice");
      else doc.seeds.push_back(*s);
    }
  }
}

void DocumentReader::ReadResources(const YAML::Node& node, SweepDocument& doc) {
  if (!CheckMap(node, "resources", {"device", "memory_gib", "gpus_per_job"})) return;
  if (node["gpus_per_job"]) {
    if (auto g = Int(node["gpus_per_job"], "resources.gpus_per_job", 1, kMaxJobDevices)) doc.gpus_per_job = *g;
  }
  if (node["device"]) {
    if (auto d = Choice(node["device"], "resources.device", {"cpu", "cuda", "npu"})) doc.device = *d;
  }
  if (node["memory_gib"]) {
    if (auto m = Number(node["memory_gib"], "resources.memory_gib", 0, 1e6)) {
      doc.memory_bytes = static_cast<int64_t>(std::llround(*m * 1024.0 * 1024.0 * 1024.0));
    }
  }
}

void DocumentReader::ReadMethods(const YAML::Node& node, SweepDocument& doc) {
  doc.methods_where = Where(node, "methods");
  if (!node.IsSequence() || node.size() == 0) {
    Problem(node, "methods", "must be a non-empty list of method blocks, e.g. - {method: lora, r: 16}");
    return;
  }
  for (size_t i = 0; i < node.size(); ++i) {
    if (auto block = ReadBlock(node[i], "methods[" + std::to_string(i) + "]")) {
      doc.methods.push_back(std::move(*block));
    }
  }
}

void DocumentReader::CheckAxisValue(const std::string& method, const std::string& key,
                                    const json& value, const Location& where) {
  if (key == "lr" || key == "lr_theta" || key == "lr_core") {
    if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() <= 0) {
      Problem(where, "must be a positive finite number, got " + Excerpt(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
    }
    return;
  }
  if (std::string err = OptionIntegerRange(value); !err.empty()) {
    Problem(where, err);
    return;
  }
  const methods::MethodInfo* info = methods::FindMethod(method);
  const methods::OptionSpec* opt = info == nullptr ? nullptr : methods::FindOption(*info, key);
  if (!opt) return;  // reported once for the key
  if (std::string err = methods::CheckOptionValue(*opt, value); !err.empty()) Problem(where, err);
}

std::optional<MethodBlock> DocumentReader::ReadBlock(const YAML::Node& node, const std::string& field) {
  if (!node.IsMap()) {
    Problem(node, field, "must be a method block, e.g. {method: lora, r: 16}");
    return std::nullopt;
  }
  MethodBlock block;
  block.where = Where(node, field);
  bool ok = true;
  if (!node["method"]) {
    Problem(node, field + ".method", "missing; one of " + methods::MethodNames());
    return std::nullopt;
  }
  auto method = String(node["method"], field + ".method");
  if (!method) return std::nullopt;
  const methods::MethodInfo* info = methods::FindMethod(*method);
  if (info == nullptr) {
    Problem(node["method"], field + ".method", "unknown method '" + Excerpt(*method) + "'; known: " + methods::MethodNames());
    return std::nullopt;
  }
  block.method = *method;
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const std::string f = field + "." + key;
    if (key == "method") continue;
    if (key == "budget") {
      if (kv.second.IsScalar() && kv.second.Scalar() == "report") {
        block.budget_report = true;
      } else if (kv.second.IsMap()) {
        block.budget = ReadBudget(kv.second, f);
        ok = ok && block.budget.has_value();
      } else {
        Problem(kv.second, f, "must be 'report' or {reference: {...}, tolerance: x}");
        ok = false;
      }
      continue;
    }
    if (key == "match") {
      if (auto m = String(kv.second, f)) {
        if (methods::FindOption(*info, *m) == nullptr) {
          Problem(kv.second, f, "'" + Excerpt(*m) + "' is not an option of " + block.method + "; known: " +
                                    methods::OptionNames(*info));
          ok = false;
        } else {
          block.match = *m;
        }
      } else {
        ok = false;
      }
      continue;
    }
    if (key == "init_from") {
      // One folder per block (not a grid axis): its content is part of every job's identity.
      if (auto folder = String(kv.second, f)) {
        if (folder->empty() || (*folder)[0] != '/') {
          Problem(kv.second, f, "must be an absolute path to an adapter folder (sweep-train runs in its own "
                                "working directory), not '" + *folder + "'");
          ok = false;
        } else {
          block.init_from = *folder;
          block.init_from_where = Where(kv.second, f);
        }
      } else {
        ok = false;
      }
      continue;
    }
    const bool special = BlockKeys().count(key) > 0;
    if ((key == "lr_theta" || key == "lr_core") && !UsesTrainLr(*info, key)) {
      Problem(kv.first, f, "'" + key + "' applies to " + MethodsUsingTrainLr(key) + " only");
      ok = false;
      continue;
    }
    if (!special && methods::FindOption(*info, key) == nullptr && !MethodsWithAlias(key).empty()) {
      Problem(kv.first, f, "'" + key + "' applies to " + MethodsWithAlias(key) + " only; known options of " +
                               block.method + ": " + methods::OptionNames(*info));
      ok = false;
      continue;
    }
    if (!special && methods::FindOption(*info, key) == nullptr) {
      std::string block_keys = "budget, match, init_from, lr";
      for (const std::string& k : info->train_lr_keys) block_keys += ", " + k;
      Problem(kv.first, f, "unknown option of " + block.method + "; known: " + methods::OptionNames(*info) +
                               " (and " + block_keys + ")");
      ok = false;
      continue;
    }
    GridAxis axis;
    axis.key = key;
    axis.where = Where(kv.second, f);
    if (kv.second.IsSequence()) {
      if (kv.second.size() == 0) {
        Problem(kv.second, f, "empty list: a grid axis needs at least one value");
        ok = false;
        continue;
      }
      for (size_t k = 0; k < kv.second.size(); ++k) {
        const YAML::Node v = kv.second[k];
        const Location w = Where(v, f + "[" + std::to_string(k) + "]");
        if (!v.IsScalar()) {
          Problem(w, "must be a single value");
          ok = false;
          continue;
        }
        const size_t before = problems_.size();
        CheckAxisValue(block.method, key, Scalar(v), w);
        ok = ok && problems_.size() == before;
        axis.values.push_back(Scalar(v));
      }
    } else if (kv.second.IsScalar()) {
      const size_t before = problems_.size();
      CheckAxisValue(block.method, key, Scalar(kv.second), axis.where);
      ok = ok && problems_.size() == before;
      axis.values.push_back(Scalar(kv.second));
    } else {
      Problem(kv.second, f, "must be a value or a list of values");
      ok = false;
      continue;
    }
    std::set<std::string> distinct;
    for (const json& v : axis.values) {
      if (!distinct.insert(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)).second) {
        Problem(axis.where, "value " + v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + " is listed twice");
        ok = false;
      }
    }
    axis.values.shrink_to_fit();
    block.axes.push_back(std::move(axis));
  }
  if (!block.match.empty()) {
    for (const GridAxis& a : block.axes) {
      const std::vector<std::string> targets = methods::AliasTargets(block.match);
      const bool same = a.key == block.match || std::find(targets.begin(), targets.end(), a.key) != targets.end();
      if (same) {
        Problem(a.where, "'" + a.key + "' is chosen by match: " + block.match + "; remove one of them");
        ok = false;
      }
    }
    if (block.budget_report) {
      Problem(block.where, "match needs a budget to match; it cannot be used with budget: report");
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return block;
}

}  // namespace

SweepDocument ReadSweepDocument(const std::string& yaml, const std::string& file,
                                std::vector<SpecProblem>& problems, size_t* omitted) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    problems.push_back({file, e.mark.is_null() ? 0 : e.mark.line + 1,
                        e.mark.is_null() ? 0 : e.mark.column + 1, "", "YAML syntax: " + e.msg});
    return {};
  }
  if (!root || root.IsNull()) {
    // Line 1: an empty file has no other place to point at.
    problems.push_back({file, 1, 1, "", "the spec is empty; see sweeps/README.md for the format"});
    return {};
  }
  DocumentReader reader(file, problems);
  try {
    SweepDocument doc = reader.Read(root);
    if (omitted != nullptr) *omitted += reader.omitted();
    return doc;
  } catch (const YAML::Exception& e) {  // e.g. a key that is not a scalar
    problems.push_back({file, e.mark.is_null() ? 0 : e.mark.line + 1,
                        e.mark.is_null() ? 0 : e.mark.column + 1, "", "YAML: " + e.msg});
    return {};
  }
}

}  // namespace sweepd::spec
