// A Llama/Mistral/Gemma-family decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU or
// Gemma's GeGLU, Mistral's sliding window, tied or untied embeddings) as LibTorch modules whose parameter names are
// exactly those of Hugging Face checkpoints ("model.layers.0.self_attn.q_proj.weight").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "worker/models/adaptable_linear.h"
#include "worker/models/llama_config.h"
#include "worker/models/rope.h"

namespace sweepd::models {

// Llama's weight ⊙ x̂; with offset 1, Gemma's (1 + weight) ⊙ x̂ computed in float32.
class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(int64_t dim, double eps, double offset = 0.0);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::Tensor weight_;
  double eps_;
  double offset_;
};
TORCH_MODULE(RmsNorm);

// What every layer of one forward pass shares: rotary tables and the attention mask.
struct AttentionContext {
  torch::Tensor cos, sin;  // [B or 1, T, rotary_dim]
  torch::Tensor mask;      // bool [B or 1, 1, T, T], true = may attend; undefined: plain causal
};

// One layer's keys and values so far, [B, kv_heads, T_cached, head_dim] (after RoPE), for
// incremental decoding: each new token attends to them instead of recomputing the prefix.
// The buffers are allocated once for `capacity` positions (grown if a call needs more) and
// written in place, so a decoding step copies only its own keys and values.
struct LayerKvCache {
  torch::Tensor keys, values;  // [B, kv_heads, capacity, head_dim]
  int64_t length = 0;          // positions filled
  int64_t capacity = 0;        // positions to allocate on first use; 0: the first call's
};

// Every layer's cache; empty before the first cached forward.
struct KvCache {
  std::vector<LayerKvCache> layers;
  int64_t capacity = 0;  // for each layer's first allocation: prompt length + new tokens
};

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const LlamaConfig& c);
  // `cache` (optional): keys and values of earlier positions, extended with this call's.
  torch::Tensor forward(const torch::Tensor& x, const AttentionContext& ctx, LayerKvCache* cache = nullptr);

  AdaptableLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  int64_t heads_, kv_heads_, head_dim_;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const LlamaConfig& c);
  torch::Tensor forward(const torch::Tensor& x);

  AdaptableLinear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};

 private:
  std::string act_;
};
TORCH_MODULE(Mlp);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  explicit DecoderLayerImpl(const LlamaConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const AttentionContext& ctx, LayerKvCache* cache = nullptr);

  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

class LlamaModelImpl : public torch::nn::Module {
 public:
  explicit LlamaModelImpl(const LlamaConfig& c);

  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RmsNorm norm{nullptr};
};
TORCH_MODULE(LlamaModel);

// The causal language model: logits for every position.
class LlamaForCausalLMImpl : public torch::nn::Module {
 public:
  explicit LlamaForCausalLMImpl(LlamaConfig config);

  // input_ids [B, T] int64. segment_ids [B, T] (optional): packed documents; attention stays
  // inside a document and positions restart at each one. Returns logits [B, T, vocab].
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& segment_ids = {});
  // Incremental decoding: logits of `input_ids` [B, T] at `positions` [B, T], attending to
  // the keys and values in `cache` and to each other as `mask` allows (bool [B, 1, T,
  // T_cached + T], true = may attend); appends this call's keys and values to `cache`.
  // `last_only`: logits of the last position only ([B, 1, vocab]), as decoding needs.
  torch::Tensor ForwardCached(const torch::Tensor& input_ids, const torch::Tensor& positions,
                              const torch::Tensor& mask, KvCache& cache, bool last_only = false);

  const LlamaConfig& config() const { return config_; }
  // Every projection of the blocks by module name ("model.layers.3.mlp.up_proj").
  std::map<std::string, AdaptableLinear> Linears();
  // N(0, 0.02) weights and unit norm scales, as transformers initialises a fresh model.
  void InitializeWeights(uint64_t seed);

  LlamaModel model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // null when the embeddings are tied

 private:
  RopeTables RopeFor(const torch::Tensor& positions);
  torch::Tensor Logits(const torch::Tensor& hidden);

  LlamaConfig config_;
  // RoPE's inverse frequencies on the device of the last forward pass, and their scaling.
  torch::Tensor rope_inv_freq_;
  double rope_scaling_ = 1.0;
};
TORCH_MODULE(LlamaForCausalLM);

// Mean next-token cross-entropy of logits [B, T, V] against targets [B, T] (already shifted:
// targets[t] is the token after position t; -100 is ignored), in float32.
torch::Tensor NextTokenLoss(const torch::Tensor& logits, const torch::Tensor& targets);

}  // namespace sweepd::models
