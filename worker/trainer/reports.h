// What a run reports about itself: the `start` and `final` metric lines (docs/metrics.md),
// with the adapters' spectra and diagnostics in a train job's final line.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/job_config.h"
#include "worker/trainer/adapter_set.h"
#include "worker/trainer/training_loop.h"

namespace sweepd::trainer {

nlohmann::json StartLine(const JobConfig& config, const torch::Device& device);

// A base_eval job's final line. `fingerprint`: the base model's (empty: none).
nlohmann::json BaseEvalFinalLine(const JobConfig& config, const std::string& fingerprint,
                                 const std::map<std::string, double>& scores, int64_t total_params,
                                 const torch::Device& device, double wall_s);

// A train job's final line: scores against base scores (Δ and trade-off), the loop's
// figures, parameter counts, spectra and diagnostics.
nlohmann::json TrainFinalLine(const JobConfig& config, const std::string& fingerprint,
                              const std::map<std::string, double>& scores,
                              const std::map<std::string, double>& base_scores, const TrainingProgress& progress,
                              const AdapterSet& adapters, int64_t base_params, const torch::Device& device,
                              double wall_s);

// Spectral entropy, normalized entropy and stable rank of every adapter's ΔW, and their means.
nlohmann::json SpectrumReport(const AdapterSet& set);

// Means over layers of each diagnostic the adapters report, plus the worst (max) value.
nlohmann::json DiagnosticsReport(const AdapterSet& set);

}  // namespace sweepd::trainer
