// The training loop of a train job: the optimizer over the adapters' tensors, the packed
// data, and the steps (micro-batches, CUDA graphs, clipping, schedule, `step` lines).
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include <torch/torch.h>

#include "common/job_config.h"
#include "worker/data/chat_template.h"
#include "worker/data/examples.h"
#include "worker/data/packing.h"
#include "worker/trainer/adamw.h"
#include "worker/trainer/adapter_set.h"
#include "worker/trainer/base_model.h"
#include "worker/trainer/metrics_writer.h"
#include "worker/trainer/stopwatch.h"

namespace sweepd::trainer {

// How far the loop has got: what a checkpoint keeps of it besides the tensors.
struct TrainingProgress {
  int64_t step = 0;  // optimizer steps done
  int64_t total_tokens = 0;
  double train_seconds = 0;
  double last_loss = std::nan("");  // of the last step this process ran
};

// The chat template for chat rows: model.chat_template (a name in tokenizer_config.json or a
// Jinja file), else the chat_template of the tokenizer_config.json beside the tokenizer or in
// the model folder; none for synthetic models and folders without one.
std::optional<data::ChatTemplate> ChatTemplateFor(const ModelSpec& model);

// The job's training examples: its JSONL file (chat rows rendered with `chat`), or a seeded
// synthetic stream.
std::vector<data::InstructionExample> TrainingExamples(const JobConfig& config, const data::ChatTemplate* chat,
                                                      const std::atomic<bool>* stop = nullptr);

// AdamW over every trainable tensor of the adapters (PEFT names), one parameter group per
// (adapters::ParamGroup, the method's per-tensor lr multiplier) with its learning rate.
AdamW BuildOptimizer(const JobConfig& config, const AdapterSet& adapters);

// Runs the steps from progress.step to config.train.steps, calling `save(step)` every
// train.checkpoint_every steps and `evaluate(step)` every train.eval_every steps (neither at
// the last). Returns false when the loss is not finite
// (the stderr line says so); throws std::runtime_error("terminated") once *stop is set.
bool Train(const JobConfig& config, BaseModel& base, AdapterSet& adapters, AdamW& optimizer, data::Packer& packer,
           const torch::Device& device, const Stopwatch& wall, const std::atomic<bool>* stop,
           TrainingProgress& progress, const std::function<void(int64_t)>& save,
           const std::function<void(int64_t)>& evaluate, MetricsWriter& metrics);

}  // namespace sweepd::trainer
