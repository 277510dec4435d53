// The linear layers of a base model, read without LibTorch: from a Hugging Face
// config.json, or from the built-in synthetic model configurations.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/job_config.h"
#include "common/param_count.h"
#include "common/status.h"

namespace sweepd {

struct ModelShape {
  nlohmann::json config;               // Hugging Face style config (config.json)
  std::vector<LinearShape> linears;    // every linear layer of the blocks, in module order
  int64_t total_params = 0;            // all parameters of the base model, lm_head included
};

// The Hugging Face style config of a built-in synthetic model ("synthetic:tiny"), or an
// error listing the known names.
Result<nlohmann::json> SyntheticModelConfig(const std::string& source);
// Shapes of `source`: "synthetic:<name>" or a checkpoint folder holding config.json.
Result<ModelShape> LoadModelShape(const std::string& source);
// The layers a track adapts: A = q_proj,v_proj; B = every linear of the blocks; else the
// named modules. An error names modules that match no layer.
Result<std::vector<LinearShape>> SelectTrack(const ModelShape& model, const TrackSpec& track);

}  // namespace sweepd
