// The job's base model and its evaluation (see base_model.h).
#include "worker/trainer/base_model.h"

#include <filesystem>
#include <stdexcept>

#include "worker/eval/scoring.h"
#include "worker/failures.h"
#include "worker/models/hf_checkpoint.h"
#include "worker/trainer/stderr_log.h"
#include "worker/trainer/stopwatch.h"
#include "worker/trainer/synthetic_base.h"

namespace sweepd::trainer {
using nlohmann::json;
namespace fs = std::filesystem;

torch::Device ParseDevice(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available()) {
      // A CUDA job is only leased to a CUDA slot: the device has gone since the worker probed it.
      throw DeviceError("device '" + name + "' requested but this sweep-train sees no CUDA device");
    }
    return torch::Device(name);
  }
  throw InvalidInput("device must be cpu or cuda[:N], not '" + name + "'");
}

BaseModel LoadBase(const JobConfig& config, const std::string& cache_dir) {
  BaseModel base;
  const Stopwatch clock;
  const ModelSpec& spec = config.model;
  if (IsSyntheticModel(spec.source)) {
    base.model = LoadSyntheticBase(spec.source, cache_dir, LogLine, &base.fingerprint);
    base.tokenizer = std::make_unique<data::ByteTokenizer>();
  } else {
    base.model = models::LoadHfModel(spec.source, models::ParseDtype(spec.dtype), ParseDevice(config.device));
    base.load_seconds = clock.Seconds();
    std::string tokenizer = spec.tokenizer;
    try {
      if (tokenizer.empty()) tokenizer = data::ModelFolderTokenizer(spec.source);
      base.tokenizer = data::LoadTokenizerFile(tokenizer);
    } catch (const std::invalid_argument& e) {
      throw InvalidInput(e.what());  // the tokenizer file is the job's input
    }
    // Every training row starts with BOS and ends with EOS (data::TokenizeExample).
    if (base.tokenizer->Bos() < 0 || base.tokenizer->Eos() < 0) {
      throw InvalidInput(tokenizer + ": names no " + (base.tokenizer->Bos() < 0 ? "BOS" : "EOS") +
                         " token; set bos_token and eos_token in tokenizer_config.json beside it");
    }
  }
  for (const auto& p : base.model->parameters()) {
    p.set_requires_grad(false);
    base.total_params += p.numel();
  }
  return base;
}

std::map<std::string, double> Evaluate(const JobConfig& config, BaseModel& base, const std::string& stage,
                                       const std::vector<eval::EvalTask>& tasks, const torch::Device& device,
                                       MetricsWriter& metrics, int64_t step,
                                       const std::map<std::string, double>* base_scores) {
  // Scores are keyed by what they measure ("arc_challenge.acc_norm"); the eval line also
  // carries the task's other metrics and, for MMLU, each subject's accuracy.
  std::map<std::string, double> scores;
  for (const auto& task : tasks) {
    const Stopwatch clock;
    eval::TaskResult s = eval::ScoreTask(base.model, *base.tokenizer, task, device);
    scores[s.score_name] = s.score;
    json line = {{"type", "eval"},
                 {"stage", stage},
                 {"task", task.spec.task},
                 {"score_name", s.score_name},
                 {"score", s.score},
                 {"metrics", s.metrics},
                 {"num_fewshot", task.spec.num_fewshot},
                 {"n", s.n},
                 {"elapsed_s", clock.Seconds()}};
    if (!s.subjects.empty()) line["subjects"] = s.subjects;
    if (step >= 0) line["step"] = step;
    if (base_scores != nullptr && base_scores->count(s.score_name)) {
      line["delta"] = s.score - base_scores->at(s.score_name);
    }
    metrics.Emit(line);
  }
  (void)config;
  return scores;
}

std::map<std::string, double> ResolveBaseScores(const JobConfig& config, BaseModel& base, const AdapterSet& adapters,
                                                const std::optional<std::map<std::string, double>>& resumed,
                                                const std::vector<eval::EvalTask>& tasks,
                                                const torch::Device& device, MetricsWriter& metrics) {
  std::map<std::string, double> base_scores = config.base_scores;
  if (!config.base_fingerprint.empty() && !base.fingerprint.empty() && config.base_fingerprint != base.fingerprint) {
    // The base evaluation ran on another machine whose pre-training made other weights: its
    // scores are not this model's, and Δ against them would compare two models.
    LogLine("the base scores came from base model " + config.base_fingerprint + ", this machine's is " +
            base.fingerprint + " (another LibTorch build or CPU); evaluating this base model here");
    base_scores.clear();
  }
  if (resumed) base_scores = *resumed;
  bool missing_base = false;
  for (const auto& t : tasks) missing_base |= !base_scores.count(t.score_name);
  if (missing_base) {
    // The base model's scores: the adapters start as the identity for most methods, but
    // not all (SORSA, JORA's magnitude), so evaluate with the adapters detached.
    auto linears = base.model->Linears();
    for (const auto& a : adapters.adapters()) linears.at(a.module)->Attach(nullptr);
    auto scores = Evaluate(config, base, "base", tasks, device, metrics);
    for (const auto& a : adapters.adapters()) linears.at(a.module)->Attach(a.adapter);
    for (const auto& [k, v] : scores) base_scores.emplace(k, v);
  }
  return base_scores;
}

}  // namespace sweepd::trainer
