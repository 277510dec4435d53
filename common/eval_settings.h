// The evaluation tasks sweepd knows, with lm-evaluation-harness's settings as defaults
// (lm_eval/tasks/{gsm8k,arc,mmlu,hellaswag}), and the one reader of an eval entry that the
// spec validator and the job configuration share.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/job_config.h"

namespace sweepd {

// One task's defaults. Synthetic data ("synthetic:<name>") has no few-shot source and was
// pre-trained with a BOS token before every document, so it is scored zero-shot with BOS.
struct EvalTaskInfo {
  std::string name;                  // gsm8k | arc_challenge | mmlu | hellaswag
  bool generative = false;           // greedy generation + extraction, else multiple choice
  int64_t num_fewshot = 0;
  std::vector<std::string> metrics;  // the first is the default
  int64_t max_gen_toks = 0;          // generative tasks
  std::vector<std::string> until;    // generative tasks: stop strings
};

const std::vector<EvalTaskInfo>& EvalTasks();
// Null for an unknown task.
const EvalTaskInfo* FindEvalTask(const std::string& name);

// A problem with one eval entry; `field` is the key inside the entry ("metric"), empty for
// the entry as a whole.
struct EvalProblem {
  std::string field;
  std::string message;
};

// Reads one eval entry (a job configuration's or a spec's, as JSON) and fills every setting
// it leaves out with the task's default. Appends each problem found to `problems`; the
// result is usable only when none was added.
EvalSpec ReadEvalSpec(const nlohmann::json& entry, std::vector<EvalProblem>& problems);
// The keys an eval entry may have.
const std::vector<std::string>& EvalSpecKeys();
nlohmann::json EvalSpecToJson(const EvalSpec& spec);

bool IsSyntheticEval(const EvalSpec& spec);
// What a table shows as the task: the task name, or "synthetic-arith" / "synthetic-mc".
std::string EvalTaskLabel(const EvalSpec& spec);
// The key of the score in metric lines and results: "arc_challenge.acc_norm",
// "gsm8k.exact_match.strict", "synthetic-mc.acc".
std::string ScoreName(const EvalSpec& spec);

}  // namespace sweepd
