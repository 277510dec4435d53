// Scoring a model on an evaluation task as lm-evaluation-harness does: multiple choice by
// the summed log-likelihood of each continuation (acc, and acc_norm dividing by the choice's
// length in characters), GSM8K by greedy generation, both answer filters and exact match.
// Every item's numbers are kept, so that a result can be traced to its item.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "worker/data/tokenizer.h"
#include "worker/eval/eval_tasks.h"
#include "worker/models/llama.h"

namespace sweepd::eval {

struct ChoiceResult {
  std::vector<double> loglik;
  int pred = 0;       // argmax of loglik
  int pred_norm = 0;  // argmax of loglik / characters of the choice
};

struct GenerationResult {
  std::vector<int64_t> ids;
  std::string text;
  std::string strict, flexible;  // extracted answers
  bool strict_match = false, flexible_match = false;
};

struct TaskResult {
  std::string score_name;                 // "arc_challenge.acc_norm"
  double score = 0;                       // the spec's metric, percent
  std::map<std::string, double> metrics;  // every metric of the task: acc, acc_norm | strict, flexible
  std::map<std::string, double> subjects; // mmlu: acc per subject
  int64_t n = 0;
  std::vector<ChoiceResult> choices;
  std::vector<GenerationResult> generations;
};

struct ScoringOptions {
  int64_t max_batch_tokens = 8192;  // multiple choice: tokens per padded forward
  int64_t generation_batch = 16;    // prompts decoded together
  bool kv_cache = true;
};

TaskResult ScoreTask(models::LlamaForCausalLM& model, const data::Tokenizer& tokenizer, const EvalTask& task,
                     const torch::Device& device, const ScoringOptions& options = {});

// Number of characters (UTF-8 code points) of `text`, as Python's len.
int64_t CharacterCount(const std::string& text);

}  // namespace sweepd::eval
