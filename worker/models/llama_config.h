// The settings of a Llama/Mistral/Gemma-family decoder, read from a Hugging Face config.json:
// both the top-level rope_theta/rope_scaling of Llama-2 and Mistral files and the
// rope_parameters of newer transformers releases. Gemma (transformers' modeling_gemma.py)
// differs only in settings kept here: activation, embedding scale and RMSNorm offset.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace sweepd::models {

// Rotary position embedding and its context-extension variants (transformers'
// ROPE_INIT_FUNCTIONS): default, linear, dynamic (NTK), llama3, yarn.
struct RopeConfig {
  std::string type = "default";
  double theta = 10000.0;
  double factor = 1.0;
  double partial_rotary_factor = 1.0;
  int64_t original_max_position_embeddings = 0;  // 0: max_position_embeddings
  double low_freq_factor = 1.0;                  // llama3
  double high_freq_factor = 4.0;                 // llama3
  double beta_fast = 32.0;                       // yarn
  double beta_slow = 1.0;                        // yarn
  double mscale = 0.0;                           // yarn (0: unset)
  double mscale_all_dim = 0.0;                   // yarn (0: unset)
  double attention_factor = 0.0;                 // yarn (0: derived from factor)
  bool truncate = true;                          // yarn
};

struct LlamaConfig {
  std::string model_type = "llama";
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  int64_t sliding_window = 0;  // Mistral; 0: full causal attention
  // The MLP's gate activation: "silu" (SwiGLU), "gelu_pytorch_tanh" (Gemma's GeGLU) or "gelu".
  std::string hidden_act = "silu";
  // Gemma multiplies the embeddings by sqrt(hidden_size), rounded to the model's dtype first.
  double embedding_scale = 1.0;
  // Gemma's RMSNorm scales by (1 + weight), in float32: norm_offset 1. Llama's: 0.
  double norm_offset = 0.0;
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  RopeConfig rope;
};

// Reads a config.json object; `where` (the file) prefixes every error message.
Result<LlamaConfig> LlamaConfigFromJson(const nlohmann::json& j, const std::string& where);

}  // namespace sweepd::models
