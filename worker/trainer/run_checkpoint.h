// A run's checkpoints: what one holds of a train job at a step (the adapter, the optimizer's
// state, and trainer_state.json: the loop's progress, the data cursor and the base scores),
// and resuming a run from the latest.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "worker/data/packing.h"
#include "worker/trainer/adamw.h"
#include "worker/trainer/adapter_set.h"
#include "worker/trainer/checkpoint.h"
#include "worker/trainer/metrics_writer.h"
#include "worker/trainer/training_loop.h"

namespace sweepd::trainer {

// Saves the run at `step` under WORKDIR/checkpoints and prints the `checkpoint` line.
void SaveRunCheckpoint(const std::string& workdir, const std::string& job_id, int64_t step, const AdapterSet& adapters,
                       const AdamW& optimizer, const data::Packer& packer, const TrainingProgress& progress,
                       const std::map<std::string, double>& base_scores, MetricsWriter& metrics);

// The latest checkpoint under WORKDIR/checkpoints, if any; throws CorruptCheckpoint for one
// that cannot be read (set aside: the next attempt takes the one before it).
std::optional<Checkpoint> CheckpointToResume(const std::string& workdir);

// The base scores the checkpoint's run compared against, if it saved them.
std::optional<std::map<std::string, double>> SavedBaseScores(const Checkpoint& checkpoint);

// Restores adapter, optimizer, data cursor and progress from `checkpoint`; throws
// CorruptCheckpoint (and sets it aside) when they do not fit the job's adapters.
void RestoreRun(const Checkpoint& checkpoint, AdapterSet& adapters, AdamW& optimizer, data::Packer& packer,
                TrainingProgress& progress);

}  // namespace sweepd::trainer
