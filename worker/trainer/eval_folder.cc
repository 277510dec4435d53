// Eval folder reading (see eval_folder.h). Each task is described as an eval entry and read
// by the job configuration's own reader, so the folder's settings get the same checks and
// defaults as a spec's.
#include "worker/trainer/eval_folder.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "common/eval_settings.h"
#include "worker/failures.h"

namespace sweepd::trainer {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path FewshotFile(const fs::path& dir, const std::string& task) {
  if (task == "mmlu") return dir / "mmlu_dev.jsonl";
  return dir / (task + "_fewshot.jsonl");
}

EvalSpec SpecFor(const fs::path& dir, const std::string& task, const json& settings, const json& ref_task) {
  const std::string where = (dir / "reference.json").string() + ": task " + task;
  json entry = {{"task", task}, {"data", (dir / (task + ".jsonl")).string()}};
  json shots = 0;
  if (ref_task.is_object() && ref_task.contains("num_fewshot")) {
    shots = ref_task["num_fewshot"];
  } else if (settings.contains(task + "_fewshot")) {
    shots = settings[task + "_fewshot"];
  }
  entry["num_fewshot"] = shots;
  if (shots.is_number_integer() && shots.get<int64_t>() > 0) entry["fewshot"] = FewshotFile(dir, task).string();
  for (const char* key : {"add_bos", "fewshot_seed"}) {
    if (settings.contains(key)) entry[key] = settings[key];
  }
  const EvalTaskInfo* info = FindEvalTask(task);
  if (info == nullptr) throw InvalidInput(where + ": unknown task; the folder's tasks must be among gsm8k, arc_challenge, mmlu, hellaswag");
  if (info->generative) {
    for (const char* key : {"max_gen_toks", "until"}) {
      if (settings.contains(key)) entry[key] = settings[key];
    }
  }
  std::vector<EvalProblem> problems;
  EvalSpec spec = ReadEvalSpec(entry, problems);
  if (!problems.empty()) throw InvalidInput(where + ": " + problems[0].field + " " + problems[0].message);
  return spec;
}

}  // namespace

EvalFolder ReadEvalFolder(const std::string& path) {
  const fs::path dir(path);
  EvalFolder folder;
  folder.dir = path;
  const fs::path ref_path = dir / "reference.json";
  std::ifstream in(ref_path);
  if (!in) throw InvalidInput(ref_path.string() + ": cannot open");
  try {
    folder.reference = json::parse(in);
  } catch (const json::parse_error& e) {
    throw InvalidInput(ref_path.string() + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  const json settings = folder.reference.value("settings", json::object());
  if (!folder.reference.contains("tasks") || !folder.reference["tasks"].is_object()) {
    throw InvalidInput(ref_path.string() + ": missing field 'tasks' (an object of task name to its reference)");
  }
  for (const auto& [name, ref_task] : folder.reference["tasks"].items()) {
    folder.tasks.emplace_back(name, SpecFor(dir, name, settings, ref_task));
  }
  fs::path tokenizer = dir / "tokenizer.model";
  if (!fs::exists(tokenizer)) tokenizer = dir / "model" / "tokenizer.model";
  folder.tokenizer = fs::exists(tokenizer) ? tokenizer.string() : "";
  return folder;
}

json TaskResultJson(const eval::EvalTask& task, const eval::TaskResult& result) {
  json items = json::array();
  json out = {{"num_fewshot", task.spec.num_fewshot}};
  if (task.generative) {
    for (size_t i = 0; i < result.generations.size(); ++i) {
      const auto& g = result.generations[i];
      items.push_back({{"prompt", task.generation[i].prompt}, {"generation", g.text}, {"generated_ids", g.ids},
                       {"strict", g.strict}, {"flexible", g.flexible}, {"strict_match", g.strict_match ? 1 : 0},
                       {"flexible_match", g.flexible_match ? 1 : 0}});
    }
    for (const auto& [metric, value] : result.metrics) out["exact_match_" + metric] = value;
  } else {
    for (size_t i = 0; i < result.choices.size(); ++i) {
      const auto& c = result.choices[i];
      items.push_back({{"context", task.choices[i].context}, {"continuations", task.choices[i].continuations},
                       {"loglik", c.loglik}, {"label", task.choices[i].label}, {"pred", c.pred},
                       {"pred_norm", c.pred_norm}});
    }
    for (const auto& [metric, value] : result.metrics) out[metric] = value;
    if (!result.subjects.empty()) out["subjects"] = result.subjects;
  }
  out["items"] = items;
  return out;
}

}  // namespace sweepd::trainer
