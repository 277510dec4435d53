// Conformance of the evaluation with lm-evaluation-harness, for `sweep-train conformance
// DIR` on an eval folder in the format of tests/fixtures/eval/tiny-llama-lmeval: a model
// folder (`model/`), a SentencePiece tokenizer, task files named for their task, few-shot
// files (`gsm8k_fewshot.jsonl`, `mmlu_dev.jsonl`, `<task>_fewshot.jsonl`) and
// `reference.json` with every item's prompt, log-likelihoods, predictions and generations.
#pragma once

#include <ostream>
#include <string>

namespace sweepd::trainer {

// True for a folder with reference.json and a model/ folder.
bool IsEvalConformancePath(const std::string& path);

// Runs every task of the folder's reference.json with its settings, in float64, and prints
// per task the largest log-likelihood error, each item that differs, the extraction cases
// that differ and the aggregates side by side. Returns 0 when everything agrees
// (log-likelihoods to 1e-6 relative), 1 on any difference, 2 when the folder cannot be used.
int RunEvalConformance(const std::string& path, std::ostream& out);

}  // namespace sweepd::trainer
