// An eval folder in the format of tests/fixtures/eval/tiny-llama-lmeval: `model/` (a Hugging
// Face folder), `tokenizer.model`, one `<task>.jsonl` per task, few-shot files
// (`gsm8k_fewshot.jsonl`, `mmlu_dev.jsonl`, `<task>_fewshot.jsonl`) and `reference.json`,
// whose `settings` and per-task `num_fewshot` say how each task is run. Read by
// `sweep-train conformance` and `sweep-train eval`.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/job_config.h"
#include "worker/eval/eval_tasks.h"
#include "worker/eval/scoring.h"

namespace sweepd::trainer {

struct EvalFolder {
  std::string dir;
  nlohmann::json reference;                         // reference.json as written
  std::vector<std::pair<std::string, EvalSpec>> tasks;  // in reference.json's order
  std::string tokenizer;                            // tokenizer.model (in the folder or model/)
};

// Reads reference.json and the settings of every task in it; throws std::invalid_argument
// naming the file and field.
EvalFolder ReadEvalFolder(const std::string& dir);

// One task's result in reference.json's format: per item the prompt or context, the
// continuations, log-likelihoods and predictions (gsm8k: generated ids, text, both
// extractions and matches), then the aggregates (acc, acc_norm | exact_match_strict,
// exact_match_flexible).
nlohmann::json TaskResultJson(const eval::EvalTask& task, const eval::TaskResult& result);

}  // namespace sweepd::trainer
