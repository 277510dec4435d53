// Eval task defaults and the eval entry reader (see eval_settings.h). Defaults follow
// lm-evaluation-harness: gsm8k.yaml (5-shot from the train split, until "Question:", "</s>",
// "<|im_end|>", 256 new tokens), arc_challenge and hellaswag zero-shot, MMLU 5-shot from the
// dev split; no BOS token (the harness's default for Llama models).
#include "common/eval_settings.h"

#include <algorithm>
#include <type_traits>

namespace sweepd {
namespace {

using nlohmann::json;

constexpr int64_t kSyntheticMaxGenToks = 48;  // the synthetic answers are short

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Reads `key` into `out` when present; a wrong type is a problem naming the key.
template <typename T>
bool ReadKey(const json& entry, const char* key, const char* expected, T& out, std::vector<EvalProblem>& problems) {
  if (!entry.contains(key) || entry[key].is_null()) return false;
  const json& v = entry[key];
  bool ok = false;
  if constexpr (std::is_same_v<T, std::string>) ok = v.is_string() && !v.get<std::string>().empty();
  if constexpr (std::is_same_v<T, int64_t>) ok = v.is_number_integer();
  if constexpr (std::is_same_v<T, bool>) ok = v.is_boolean();
  if (!ok) {
    problems.push_back({key, std::string("must be ") + expected + ", not " + v.dump()});
    return false;
  }
  out = v.get<T>();
  return true;
}

}  // namespace

const std::vector<EvalTaskInfo>& EvalTasks() {
  static const std::vector<EvalTaskInfo> kTasks = {
      {"gsm8k", true, 5, {"strict", "flexible"}, 256, {"Question:", "</s>", "<|im_end|>"}},
      {"arc_challenge", false, 0, {"acc_norm", "acc"}, 0, {}},
      {"mmlu", false, 5, {"acc"}, 0, {}},
      {"hellaswag", false, 0, {"acc_norm", "acc"}, 0, {}},
  };
  return kTasks;
}

const EvalTaskInfo* FindEvalTask(const std::string& name) {
  for (const auto& t : EvalTasks()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const std::vector<std::string>& EvalSpecKeys() {
  static const std::vector<std::string> kKeys = {"task",        "data",     "role",         "limit",
                                                 "num_fewshot", "fewshot",  "fewshot_seed", "add_bos",
                                                 "max_gen_toks", "until",   "metric"};
  return kKeys;
}

bool IsSyntheticEval(const EvalSpec& spec) { return spec.data.rfind("synthetic:", 0) == 0; }

std::string EvalTaskLabel(const EvalSpec& spec) {
  if (!IsSyntheticEval(spec)) return spec.task;
  return spec.task == "gsm8k" ? "synthetic-arith" : "synthetic-mc";
}

std::string ScoreName(const EvalSpec& spec) {
  const EvalTaskInfo* info = FindEvalTask(spec.task);
  const bool generative = info != nullptr && info->generative;
  return EvalTaskLabel(spec) + (generative ? ".exact_match." : ".") + spec.metric;
}

EvalSpec ReadEvalSpec(const json& entry, std::vector<EvalProblem>& problems) {
  EvalSpec spec;
  if (!entry.is_object()) {
    problems.push_back({"", "must be a mapping, e.g. {task: gsm8k, data: gsm8k.jsonl, role: stability}"});
    return spec;
  }
  for (const auto& [key, _] : entry.items()) {
    if (std::find(EvalSpecKeys().begin(), EvalSpecKeys().end(), key) == EvalSpecKeys().end()) {
      problems.push_back({key, "unknown key; known keys: " + Join(EvalSpecKeys())});
    }
  }
  std::vector<std::string> task_names;
  for (const auto& t : EvalTasks()) task_names.push_back(t.name);
  const EvalTaskInfo* info = nullptr;
  if (!entry.contains("task")) {
    problems.push_back({"task", "missing; one of " + Join(task_names)});
  } else if (ReadKey(entry, "task", "a task name", spec.task, problems)) {
    info = FindEvalTask(spec.task);
    if (info == nullptr) problems.push_back({"task", "unknown task '" + spec.task + "'; one of " + Join(task_names)});
  }
  if (!entry.contains("data")) {
    problems.push_back({"data", "missing; synthetic:<name> or a JSONL file"});
  } else {
    ReadKey(entry, "data", "a non-empty string (synthetic:<name> or a JSONL file)", spec.data, problems);
  }
  spec.role = "none";
  if (ReadKey(entry, "role", "stability, plasticity or none", spec.role, problems) && spec.role != "stability" &&
      spec.role != "plasticity" && spec.role != "none") {
    problems.push_back({"role", "must be stability, plasticity or none, not '" + spec.role + "'"});
  }
  if (ReadKey(entry, "limit", "an integer >= 0", spec.limit, problems) && spec.limit < 0) {
    problems.push_back({"limit", "must be >= 0 (0: every item)"});
  }
  if (info == nullptr) return spec;

  const bool synthetic = IsSyntheticEval(spec);
  spec.num_fewshot = synthetic ? 0 : info->num_fewshot;
  spec.add_bos = synthetic;
  spec.max_gen_toks = synthetic ? kSyntheticMaxGenToks : info->max_gen_toks;
  spec.until = info->until;
  // The synthetic multiple-choice set was always scored by plain accuracy.
  spec.metric = synthetic && !info->generative ? "acc" : info->metrics.front();
  const bool shots_given = ReadKey(entry, "num_fewshot", "an integer >= 0", spec.num_fewshot, problems);
  if (spec.num_fewshot < 0) problems.push_back({"num_fewshot", "must be >= 0"});
  ReadKey(entry, "fewshot", "a JSONL file of the task's format", spec.fewshot, problems);
  int64_t seed = 0;
  if (ReadKey(entry, "fewshot_seed", "an integer", seed, problems)) spec.fewshot_seed = seed;
  ReadKey(entry, "add_bos", "true or false", spec.add_bos, problems);
  if (ReadKey(entry, "metric", "a metric name", spec.metric, problems) &&
      std::find(info->metrics.begin(), info->metrics.end(), spec.metric) == info->metrics.end()) {
    problems.push_back({"metric", "unknown metric '" + spec.metric + "' for " + spec.task + "; one of " +
                                      Join(info->metrics)});
  }
  if (synthetic && spec.num_fewshot > 0) {
    problems.push_back({"num_fewshot", "synthetic data has no few-shot examples; use num_fewshot: 0"});
  } else if (spec.num_fewshot > 0 && spec.fewshot.empty()) {
    const std::string source = spec.task == "mmlu" ? "the dev split as JSONL" : "the train split as JSONL";
    problems.push_back({shots_given ? "num_fewshot" : "fewshot",
                        spec.task + " is scored " + std::to_string(spec.num_fewshot) +
                            "-shot; set fewshot: FILE (" + source + ") or num_fewshot: 0"});
  }
  if (spec.num_fewshot == 0 && entry.contains("fewshot_seed")) {
    problems.push_back({"fewshot_seed", "has no effect with num_fewshot 0; remove it"});
  }
  if (!info->generative) {
    for (const char* key : {"max_gen_toks", "until"}) {
      if (entry.contains(key)) problems.push_back({key, "only generative tasks (gsm8k) generate; remove it"});
    }
    return spec;
  }
  if (ReadKey(entry, "max_gen_toks", "an integer >= 1", spec.max_gen_toks, problems) && spec.max_gen_toks < 1) {
    problems.push_back({"max_gen_toks", "must be >= 1"});
  }
  if (entry.contains("until")) {
    const json& u = entry["until"];
    const bool strings = u.is_array() && std::all_of(u.begin(), u.end(), [](const json& s) {
                           return s.is_string() && !s.get<std::string>().empty();
                         });
    if (!strings) {
      problems.push_back({"until", "must be a list of non-empty stop strings, e.g. [\"Question:\", \"</s>\"]"});
    } else {
      spec.until = u.get<std::vector<std::string>>();
    }
  }
  return spec;
}

json EvalSpecToJson(const EvalSpec& e) {
  json j = {{"task", e.task},     {"data", e.data},       {"role", e.role},         {"limit", e.limit},
            {"num_fewshot", e.num_fewshot}, {"add_bos", e.add_bos}, {"metric", e.metric}};
  if (!e.fewshot.empty()) j["fewshot"] = e.fewshot;
  if (e.fewshot_seed) j["fewshot_seed"] = *e.fewshot_seed;
  const EvalTaskInfo* info = FindEvalTask(e.task);
  if (info != nullptr && info->generative) {
    j["max_gen_toks"] = e.max_gen_toks;
    j["until"] = e.until;
  }
  return j;
}

}  // namespace sweepd
