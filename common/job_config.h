// JobConfig: the full resolved configuration of one job, as sweepd stores it and
// sweep-train runs it. Its JSON form is documented in docs/job-config.md; sweepd
// hashes the canonical JSON (without job_id and sweep) into the job's identity.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace sweepd {

struct ModelSpec {
  std::string source = "synthetic:tiny";  // "synthetic:<name>" or a Hugging Face checkpoint folder
  std::string tokenizer;                  // SentencePiece .model; empty: from the source
  std::string dtype = "float32";          // float32 | bfloat16 | float16
  // Chat rows: a template named in tokenizer_config.json or a Jinja file; empty: the default.
  std::string chat_template;
};

struct TrackSpec {
  std::string name = "A";               // A, B, or a user-given name
  std::vector<std::string> modules;     // module names to adapt; "all-linear" for track B
};

struct TrainSpec {
  std::string data = "synthetic:mc";
  int64_t steps = 100;                  // optimizer steps, fixed
  double lr = 2e-4;
  std::string schedule = "cosine";      // cosine | linear | constant
  double warmup_ratio = 0.03;
  int64_t seq_len = 256;
  int64_t tokens_per_update = 8192;     // gradient accumulation reaches this many tokens
  int64_t micro_batch = 8;              // sequences per forward pass
  double weight_decay = 0.0;
  double grad_clip = 1.0;
  std::optional<double> lr_theta;       // JORA angles
  std::optional<double> lr_core;        // JORA core
  int64_t log_every = 10;
  int64_t checkpoint_every = 0;         // 0: only at the end
  int64_t eval_every = 0;               // score the eval tasks every N steps (0: before and after only)
  int64_t spectrum_every = 0;           // stream the adapters' spectra every N steps (0: at the end only)
};

struct EvalSpec {
  std::string task;                     // gsm8k | arc_challenge | mmlu | hellaswag
  std::string data;                     // "synthetic:<name>" or a JSONL file
  std::string role;                     // stability | plasticity | none
  int64_t limit = 0;                    // 0: every example
  // lm-evaluation-harness settings; common/eval_settings.h fills in each task's defaults.
  int64_t num_fewshot = 0;              // examples before each item
  std::string fewshot;                  // JSONL of the task's format (mmlu: the dev split)
  std::optional<int64_t> fewshot_seed;  // unset: the first num_fewshot rows
  bool add_bos = false;                 // a BOS token before every context
  int64_t max_gen_toks = 0;             // generative tasks: new tokens at most
  std::vector<std::string> until;       // generative tasks: stop strings
  std::string metric;                   // acc | acc_norm (multiple choice), strict | flexible (gsm8k)
};

// A merge job (kind merge): folds the adapter its train job left in output_dir into the base
// model folder (sweep-train merge), writing OutputFolder(output_dir, from_job)/merged.
struct MergeSpec {
  std::string from_job;                 // the train job's job_id
  std::string dtype;                    // float32 | bfloat16 | float16; empty: the base config's
  std::string max_shard_size = "5GB";   // common/byte_size.h
};

struct JobConfig {
  std::string job_id;
  std::string sweep;
  std::string kind = "train";           // train | base_eval | merge
  ModelSpec model;
  TrackSpec track;
  nlohmann::json adapter = nlohmann::json::object();  // {"method": "lora", "r": 8, ...}
  // adapter.init_from: an adapter folder (PEFT's layout or sweep-train's) training starts from
  // instead of the method's initialisation; empty: none. Its path is not part of the job's
  // identity, its content is: init_from_sha256 (spec/adapter_digest.h), set by the spec expansion.
  std::string init_from;
  std::string init_from_sha256;
  TrainSpec train;
  std::vector<EvalSpec> eval;
  double tradeoff_lambda = 1.0;
  int64_t seed = 0;
  std::string device = "cpu";           // cpu | cuda | npu
  // Devices (ranks) the job runs on at once, 1..kMaxJobDevices (resources.gpus_per_job): one
  // process per device, data parallel (worker/trainer/distributed.h). Not part of the job's
  // identity: the training result is the same on any count, up to the order of sums.
  int64_t devices = 1;
  std::string base_eval_job;            // job_id of the base-model evaluation, if any
  // Base-model scores by task, filled in by sweepd from base_eval_job's result when it
  // leases the job; not part of the job's identity. Empty: the trainer evaluates the base.
  std::map<std::string, double> base_scores;
  // The base_fingerprint of that evaluation's result (synthetic models), filled in with
  // base_scores; the trainer evaluates the base itself when its own model's differs.
  std::string base_fingerprint;
  // An absolute folder (shared by the workers and the machine sweepctl export runs on) where a
  // train job leaves a copy of its adapter folder and a merge job its merged model:
  // OutputFolder(output_dir, job_id)/adapter and .../merged. Empty: none. Not part of the job's
  // identity (a path; the same training anywhere).
  std::string output_dir;
  MergeSpec merge;                      // kind merge only
};

inline constexpr int64_t kMaxJobDevices = 64;

// output_dir/job_id: the folder of one train job's outputs.
std::string OutputFolder(const std::string& output_dir, const std::string& job_id);

nlohmann::json ToJson(const JobConfig& config);
// Reads a job configuration; the message names the offending field.
Result<JobConfig> JobConfigFromJson(const nlohmann::json& j);
// The configuration that identifies a job: everything but job_id, sweep, base_scores,
// base_fingerprint, devices and output_dir, and adapter.init_from's path when its content digest
// is set.
std::string CanonicalJobJson(const JobConfig& config);

}  // namespace sweepd
