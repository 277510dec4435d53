// A run's checkpoints (see run_checkpoint.h); the folder format is checkpoint.h's. A
// checkpoint that cannot be restored is set aside and the attempt crashes: the retry resumes
// from the checkpoint before it.
#include "worker/trainer/run_checkpoint.h"

#include <new>

#include <nlohmann/json.hpp>

#include "worker/trainer/stderr_log.h"

namespace sweepd::trainer {
using nlohmann::json;

void SaveRunCheckpoint(const std::string& workdir, const std::string& job_id, int64_t step, const AdapterSet& adapters,
                       const AdamW& optimizer, const data::Packer& packer, const TrainingProgress& progress,
                       const std::map<std::string, double>& base_scores, MetricsWriter& metrics) {
  json state = {{"step", step},
                {"optimizer_steps", optimizer.steps()},
                {"data_cursor", packer.cursor()},
                {"tokens", progress.total_tokens},
                {"train_seconds", progress.train_seconds},
                {"base_scores", base_scores},
                {"job_id", job_id}};
  const std::string path = SaveCheckpoint(workdir, step, adapters.Tensors(true), optimizer.State(), state);
  metrics.Emit({{"type", "checkpoint"}, {"step", step}, {"path", path}});
}

std::optional<Checkpoint> CheckpointToResume(const std::string& workdir) { return LoadLatestCheckpoint(workdir); }

std::optional<std::map<std::string, double>> SavedBaseScores(const Checkpoint& checkpoint) {
  if (!checkpoint.state.contains("base_scores")) return std::nullopt;
  try {
    return checkpoint.state["base_scores"].get<std::map<std::string, double>>();
  } catch (const nlohmann::json::exception& e) {
    SetAsideCheckpoint(checkpoint.path, checkpoint.path + "/trainer_state.json: base_scores: " + e.what());
  }
}

void RestoreRun(const Checkpoint& checkpoint, AdapterSet& adapters, AdamW& optimizer, data::Packer& packer,
                TrainingProgress& progress) {
  try {
    adapters.Load(checkpoint.adapter, checkpoint.path + "/adapter_model.safetensors");
    optimizer.LoadState(checkpoint.optimizer, checkpoint.state.at("optimizer_steps").get<int64_t>());
    packer.set_cursor(checkpoint.state.at("data_cursor").get<int64_t>());
    progress.step = checkpoint.step;
    progress.total_tokens = checkpoint.state.value("tokens", int64_t{0});
    progress.train_seconds = checkpoint.state.value("train_seconds", 0.0);
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    // Tensors or state that do not fit this job's adapters: the job id is the hash of its
    // configuration, so the checkpoint was damaged, not made by another job.
    SetAsideCheckpoint(checkpoint.path, e.what());
  }
  LogLine("resumed from " + checkpoint.path + " at step " + std::to_string(progress.step));
}

}  // namespace sweepd::trainer
