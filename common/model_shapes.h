// The linear layers of a base model, read without LibTorch: from a Hugging Face
// config.json, or from the built-in synthetic model configurations.
#pragma once

#include <cstdint>
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
// The largest sizes a config.json may give, checked before any layer is listed or anything
// allocated (docs/job-config.md). Each is several times the largest open decoder of the
// Llama/Mistral/Gemma families (Llama 3.1 405B: 126 layers, hidden 16384, intermediate 53248,
// 128 heads; Gemma: a 256,000-token vocabulary).
struct ModelShapeLimits {
  static constexpr int64_t kMaxLayers = 1024;
  static constexpr int64_t kMaxHiddenSize = 1 << 17;        // also head_dim x heads
  static constexpr int64_t kMaxIntermediateSize = 1 << 19;
  static constexpr int64_t kMaxHeads = 4096;
  static constexpr int64_t kMaxVocabSize = 1 << 22;
  static constexpr int64_t kMaxConfigBytes = 1 << 20;       // config.json itself
};

// Shapes of `source`: "synthetic:<name>" or a checkpoint folder holding config.json (a
// regular file of at most ModelShapeLimits::kMaxConfigBytes). A size over its limit is an
// error naming the file, the key and the limit.
Result<ModelShape> LoadModelShape(const std::string& source);
// The layers a track adapts: A = q_proj,v_proj; B = every linear of the blocks; else the
// named modules. An error names modules that match no layer.
Result<std::vector<LinearShape>> SelectTrack(const ModelShape& model, const TrackSpec& track);

}  // namespace sweepd
