// The life of one sweep-train job, in order: input checks, the base model, base_eval's
// scores or a train job's adapters (the method's initialisation or adapter.init_from), base
// scores, training with checkpoints, export, final evaluation and the final line. Order matters
// for reproducibility: the adapters are initialised from the job seed right after the base model
// is ready, and a resumed run restores adapter, optimizer and cursor before its first step, so
// that it ends with the same adapter as an unbroken run.
#include "worker/trainer/job_runner.h"

#include <unistd.h>

#include <filesystem>
#include <optional>
#include <stdexcept>

#include "common/contracts.h"
#include "common/job_folder_name.h"
#include "common/model_shapes.h"
#include "common/param_count.h"
#include "worker/compat.h"
#include "worker/eval/eval_tasks.h"
#include "worker/failures.h"
#include "worker/trainer/adapter_set.h"
#include "worker/trainer/base_model.h"
#include "worker/trainer/distributed.h"
#include "worker/trainer/merge.h"
#include "worker/trainer/peft_folder.h"
#include "worker/trainer/reports.h"
#include "worker/trainer/run_checkpoint.h"
#include "worker/trainer/stopwatch.h"
#include "worker/trainer/training_loop.h"

namespace sweepd::trainer {
namespace fs = std::filesystem;

namespace {

// Checks the adapter settings and the track against the model's shapes before anything
// expensive runs; errors name the job file.
void CheckAdapterSettings(const JobConfig& config, const RunOptions& options) {
  const std::string where = options.job_path.empty() ? "job" : options.job_path;
  Result<ModelShape> shape = LoadModelShape(config.model.source);
  if (!shape.ok()) throw InvalidInput(shape.status().message());
  Result<std::vector<LinearShape>> layers = SelectTrack(*shape, config.track);
  if (!layers.ok()) throw InvalidInput(where + ": " + layers.status().message());
  for (const LinearShape& layer : *layers) {
    Result<int64_t> count = CountTrainableParameters(config.adapter, layer);
    if (!count.ok()) throw InvalidInput(where + ": " + count.status().message());
  }
}

void CheckOutputName(const std::string& job_id) {
  if (Status name = CheckJobFolderName(job_id); !name.ok()) throw InvalidInput(name.message());
}

// A train job's adapter folder copied to OutputFolder(output_dir, job_id)/adapter, through a
// temporary folder beside it and a rename, so that a reader never sees half a folder.
void ExportAdapterFolder(const JobConfig& config, const fs::path& adapter) {
  CheckOutputName(config.job_id);
  const fs::path dest = fs::path(OutputFolder(config.output_dir, config.job_id)) / "adapter";
  const fs::path tmp = dest.parent_path() / ("adapter.partial-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  fs::remove_all(tmp, ec);
  fs::copy(adapter, tmp, fs::copy_options::recursive, ec);
  if (!ec) fs::remove_all(dest, ec);
  if (!ec) fs::rename(tmp, dest, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove_all(tmp, ec);
    throw IoError(dest.string() + ": cannot write the adapter folder to output_dir: " + why);
  }
}

// kind merge: the adapter its train job left in output_dir folded into the base model folder,
// written to OutputFolder(output_dir, from_job)/merged (docs/job-config.md).
int RunMergeJob(const JobConfig& config, MetricsWriter& metrics, const Stopwatch& wall) {
  CheckOutputName(config.merge.from_job);
  const fs::path folder = OutputFolder(config.output_dir, config.merge.from_job);
  const fs::path adapter = folder / "adapter";
  const fs::path merged = folder / "merged";
  if (!fs::is_regular_file(adapter / "adapter_config.json")) {
    throw InvalidInput(adapter.string() + ": no adapter folder; train job " + config.merge.from_job +
                       " leaves one there when it succeeds with output_dir set (its settings must have a folder "
                       "layout, docs/adapters.md), and this worker must see output_dir");
  }
  // An earlier attempt's folder is complete (merges are renamed into place) but is made again:
  // the merge is deterministic and its counts go into this job's final line.
  std::error_code ec;
  fs::remove_all(merged, ec);
  MergeArgs args;
  args.model = config.model.source;
  args.adapter = adapter.string();
  args.out = merged.string();
  args.dtype = config.merge.dtype;
  args.max_shard_size = config.merge.max_shard_size;
  const MergeResult r = MergeAdapter(args);
  metrics.Emit({{"type", "final"},
                {"job_id", config.job_id},
                {"kind", "merge"},
                {"method", r.method},
                {"track", config.track.name},
                {"seed", config.seed},
                {"scores", nlohmann::json::object()},
                {"total_params", r.total_params},
                {"wall_s", wall.Seconds()},
                {"peak_mem_bytes", 0},
                {"merged", r.folder},
                {"merged_dtype", r.dtype},
                {"merged_files", r.files},
                {"merged_layers", r.layers},
                {"adapter", adapter.string()}});
  return exit_status::kOk;
}

}  // namespace

int RunJob(const JobConfig& config, const RunOptions& options, MetricsWriter& metrics) {
  const Stopwatch wall;
  const torch::Device device = ParseDevice(config.device);
  torch::manual_seed(static_cast<uint64_t>(config.seed));
  metrics.Emit(StartLine(config, device));
  if (device.is_cuda()) compat::ResetCudaPeak(device.has_index() ? device.index() : 0);

  // Check everything that can be checked before any expensive work.
  // The model's sizes within common/model_shapes.h's caps before any tensor is allocated,
  // for base evaluations too (a config.json saying 10^9 layers is refused, not allocated).
  if (Result<ModelShape> shape = LoadModelShape(config.model.source); !shape.ok()) {
    throw InvalidInput(shape.status().message());
  }
  if (config.kind == "merge") return RunMergeJob(config, metrics, wall);
  std::vector<eval::EvalTask> tasks;
  for (const EvalSpec& spec : config.eval) tasks.push_back(eval::LoadEvalTask(spec));
  std::vector<data::InstructionExample> examples;
  std::optional<data::ChatTemplate> chat;
  std::optional<PeftAdapter> init_from;
  if (config.kind == "train") {
    CheckAdapterSettings(config, options);
    if (!config.init_from.empty()) init_from = CheckInitFolder(config.init_from, config);
    chat = ChatTemplateFor(config.model);
    examples = TrainingExamples(config, chat ? &*chat : nullptr, options.stop);
    if (config.train.seq_len <= 0 || config.train.micro_batch <= 0 || config.train.tokens_per_update <= 0) {
      throw InvalidInput("train.seq_len, train.micro_batch and train.tokens_per_update must be positive");
    }
  }

  BaseModel base = LoadBase(config, options.cache_dir);
  base.model->to(device);

  if (config.kind == "base_eval") {
    auto scores = Evaluate(config, base, "base", tasks, device, metrics);
    nlohmann::json final_line =
        BaseEvalFinalLine(config, base.fingerprint, scores, base.total_params, device, wall.Seconds());
    final_line["load_seconds"] = base.load_seconds;
    metrics.Emit(final_line);
    return exit_status::kOk;
  }

  // Adapters first (seeded), so that their initial values do not depend on whether base
  // scores had to be computed.
  torch::manual_seed(static_cast<uint64_t>(config.seed));
  AdapterSet adapters = AdapterSet::Attach(base.model, config.adapter, config.track);

  std::optional<Checkpoint> resumed;
  if (options.resume) resumed = CheckpointToResume(options.workdir);
  // adapter.init_from replaces the method's initialisation (the optimizer starts fresh); a
  // checkpoint of this job, when resuming, holds the adapter trained since and wins.
  if (init_from && !resumed) LoadFolderTensors(config.init_from, *init_from, adapters);
  const std::map<std::string, double> base_scores = ResolveBaseScores(
      config, base, adapters, resumed ? SavedBaseScores(*resumed) : std::nullopt, tasks, device, metrics);

  AdamW optimizer = BuildOptimizer(config, adapters);
  std::vector<data::TokenizedExample> tokenized;
  for (const auto& ex : examples) {
    tokenized.push_back(data::TokenizeExample(ex, *base.tokenizer, chat ? &*chat : nullptr));
  }
  data::Packer packer(std::move(tokenized), static_cast<uint64_t>(config.seed), base.tokenizer->Eos());

  TrainingProgress progress;
  if (resumed) RestoreRun(*resumed, adapters, optimizer, packer, progress);
  const int64_t start_step = progress.step;
  // Across devices only rank 0 writes and evaluates (distributed.h).
  const bool main_rank = DataParallel::Current().main();
  auto save = [&](int64_t step) {
    if (!main_rank) return;
    SaveRunCheckpoint(options.workdir, config.job_id, step, adapters, optimizer, packer, progress, base_scores,
                      metrics);
  };
  // eval_every: the tasks scored during training, each score's Δ against the base model.
  auto evaluate = [&](int64_t step) {
    if (main_rank) Evaluate(config, base, "step", tasks, device, metrics, step, &base_scores);
  };
  if (!Train(config, base, adapters, optimizer, packer, device, wall, options.stop, progress, save, evaluate,
             metrics)) {
    return exit_status::kNonFinite;
  }
  if (!main_rank) return exit_status::kOk;
  if (config.train.steps > start_step || !resumed) save(config.train.steps);
  if (HasPeftLayout(config)) {
    // The final adapter in PEFT's layout too (PeftModel.from_pretrained; docs/adapters.md).
    WritePeftFolder((fs::path(options.workdir) / "adapter").string(), config, adapters);
    if (!config.output_dir.empty()) ExportAdapterFolder(config, fs::path(options.workdir) / "adapter");
  }

  auto scores = Evaluate(config, base, "final", tasks, device, metrics, config.train.steps, &base_scores);
  nlohmann::json final_line = TrainFinalLine(config, base.fingerprint, scores, base_scores, progress, adapters,
                                             base.total_params, device, wall.Seconds());
  final_line["load_seconds"] = base.load_seconds;
  metrics.Emit(final_line);
  return exit_status::kOk;
}

}  // namespace sweepd::trainer
