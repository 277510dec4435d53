// Where a configuration's trainable parameters sit (rotation, core, magnitude), for the
// seed design's parameter-budget table (Table 5). Computed from the closed-form counts
// (common/param_count.h) by switching one component off at a time, so it needs the
// model's shape (a synthetic name or a checkpoint folder with config.json), not the run.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "common/model_shapes.h"
#include "common/status.h"

namespace sweepd::client {

struct ParamBreakdown {
  int64_t rotation = 0;   // Givens angles (JORA), skew factors (SORA), OFT/BOFT blocks
  int64_t core = 0;       // everything else that adapts: low-rank factors, diagonal, blocks
  int64_t magnitude = 0;  // per-output scales (DoRA, Pre-Diag, JORA's magnitude)
  int64_t total = 0;
  std::string core_type;  // "Low-rank", "Diagonal", "Block", "Orthogonal", "Scaling"
  int64_t hidden_size = 0;  // the model's d, for coverage k/d
};

// Computes breakdowns of job configurations (JobConfig JSON), caching model shapes.
class ParamBreakdownCache {
 public:
  Result<ParamBreakdown> Get(const nlohmann::json& config);

 private:
  std::map<std::string, Result<ModelShape>> shapes_;      // by model source
  std::map<std::string, Result<ParamBreakdown>> results_;  // by model, track and adapter
};

}  // namespace sweepd::client
