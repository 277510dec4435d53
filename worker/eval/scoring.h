// Scoring a model on an evaluation task: exact match of the final number by greedy
// generation (GSM8K) and multiple choice by summed log-likelihood (ARC, MMLU, HellaSwag).
#pragma once

#include <torch/torch.h>

#include "worker/data/tokenizer.h"
#include "worker/eval/eval_tasks.h"
#include "worker/models/llama.h"

namespace sweepd::eval {

struct TaskScore {
  double score = 0;  // percent, 0-100
  int64_t n = 0;
};

TaskScore ScoreTask(models::LlamaForCausalLM& model, const data::Tokenizer& tokenizer, const EvalTask& task,
                    const torch::Device& device);

// Greedy continuation of `prompt`, at most `max_new_tokens` tokens, stopping at EOS or
// once a line after "####" ends.
std::string GreedyContinuation(models::LlamaForCausalLM& model, const data::Tokenizer& tokenizer,
                               const std::string& prompt, int64_t max_new_tokens, const torch::Device& device);

}  // namespace sweepd::eval
