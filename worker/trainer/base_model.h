// The job's base model: the device it runs on, the frozen model and its tokenizer, and its
// scores on the job's evaluation tasks (the `eval` metric lines, docs/metrics.md).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/job_config.h"
#include "worker/data/tokenizer.h"
#include "worker/eval/eval_tasks.h"
#include "worker/models/llama.h"
#include "worker/trainer/adapter_set.h"
#include "worker/trainer/metrics_writer.h"

namespace sweepd::trainer {

struct BaseModel {
  models::LlamaForCausalLM model{nullptr};
  std::unique_ptr<data::Tokenizer> tokenizer;
  int64_t total_params = 0;
  std::string fingerprint;  // synthetic models: LoadSyntheticBase's hash of the weights
  double load_seconds = 0;  // Hugging Face folders: reading the weights onto the job's device
};

// "cpu" or "cuda[:N]"; a CUDA device this sweep-train cannot see is refused.
torch::Device ParseDevice(const std::string& name);

// The job's base model with every parameter frozen; synthetic models come from (or are
// pre-trained into) `cache_dir`.
BaseModel LoadBase(const JobConfig& config, const std::string& cache_dir);

// Scores every task with the model as it is (adapters attached or not), one `eval` line
// per task with `stage`. `step` >= 0 and `base_scores` (optional) mark an evaluation during
// or after training: its lines carry the step and each score's Δ against the base model.
std::map<std::string, double> Evaluate(const JobConfig& config, BaseModel& base, const std::string& stage,
                                       const std::vector<eval::EvalTask>& tasks, const torch::Device& device,
                                       MetricsWriter& metrics, int64_t step = -1,
                                       const std::map<std::string, double>* base_scores = nullptr);

// The base scores a train job compares against: those of a resumed checkpoint, else the
// job's (unless they came from another base model), with any task still missing scored here
// with the adapters detached.
std::map<std::string, double> ResolveBaseScores(const JobConfig& config, BaseModel& base, const AdapterSet& adapters,
                                                const std::optional<std::map<std::string, double>>& resumed,
                                                const std::vector<eval::EvalTask>& tasks,
                                                const torch::Device& device, MetricsWriter& metrics);

}  // namespace sweepd::trainer
