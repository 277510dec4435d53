// The decoder's maths in one place, following transformers' modeling_llama.py,
// modeling_mistral.py and modeling_gemma.py so that Hugging Face checkpoints give the same logits.
#include "worker/models/llama.h"

#include <algorithm>

#include "worker/compat.h"
#include "worker/models/fused_ops.h"
#include "worker/models/rope.h"

namespace sweepd::models {

namespace F = torch::nn::functional;

RmsNormImpl::RmsNormImpl(int64_t dim, double eps, double offset) : eps_(eps), offset_(offset) {
  weight_ = register_parameter("weight", torch::full({dim}, 1.0 - offset));
}

torch::Tensor RmsNormImpl::forward(const torch::Tensor& x) {
  if (offset_ == 0.0) return compat::RmsNorm(x, weight_, eps_);
  // GemmaRMSNorm: the scale is applied in float32 before the one rounding to x's dtype.
  auto h = x.to(torch::kFloat32);
  h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return (h * (weight_.to(torch::kFloat32) + offset_)).to(x.scalar_type());
}

AttentionImpl::AttentionImpl(const LlamaConfig& c)
    : heads_(c.num_heads), kv_heads_(c.num_kv_heads), head_dim_(c.head_dim) {
  const int64_t h = c.hidden_size;
  q_proj = register_module("q_proj", AdaptableLinear(h, heads_ * head_dim_, c.attention_bias));
  k_proj = register_module("k_proj", AdaptableLinear(h, kv_heads_ * head_dim_, c.attention_bias));
  v_proj = register_module("v_proj", AdaptableLinear(h, kv_heads_ * head_dim_, c.attention_bias));
  o_proj = register_module("o_proj", AdaptableLinear(heads_ * head_dim_, h, c.attention_bias));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const AttentionContext& ctx, LayerKvCache* cache) {
  const int64_t b = x.size(0), t = x.size(1);
  // RoPE in the projections' own [B, T, H, D] layout, where every tensor it touches is contiguous;
  // attention reads the [B, H, T, D] views.
  auto q = RotaryEmbedding(q_proj(x).view({b, t, heads_, head_dim_}), ctx.cos, ctx.sin).transpose(1, 2);
  auto k = RotaryEmbedding(k_proj(x).view({b, t, kv_heads_, head_dim_}), ctx.cos, ctx.sin).transpose(1, 2);
  auto v = v_proj(x).view({b, t, kv_heads_, head_dim_}).transpose(1, 2);
  if (cache != nullptr) {
    const int64_t needed = cache->length + t;
    if (!cache->keys.defined() || needed > cache->keys.size(2)) {
      const int64_t capacity = std::max(needed, cache->capacity);
      auto keys = torch::empty({b, kv_heads_, capacity, head_dim_}, k.options());
      auto values = torch::empty({b, kv_heads_, capacity, head_dim_}, v.options());
      if (cache->length > 0) {
        keys.narrow(2, 0, cache->length).copy_(cache->keys.narrow(2, 0, cache->length));
        values.narrow(2, 0, cache->length).copy_(cache->values.narrow(2, 0, cache->length));
      }
      cache->keys = keys;
      cache->values = values;
    }
    cache->keys.narrow(2, cache->length, t).copy_(k);
    cache->values.narrow(2, cache->length, t).copy_(v);
    cache->length = needed;
    k = cache->keys.narrow(2, 0, needed);
    v = cache->values.narrow(2, 0, needed);
  }
  // Grouped-query attention (kv_heads_ < heads_) is resolved inside, without copies where possible.
  auto out = compat::ScaledDotProductAttention(q, k, v, ctx.mask);
  return o_proj(out.transpose(1, 2).reshape({b, t, heads_ * head_dim_}));
}

MlpImpl::MlpImpl(const LlamaConfig& c) : act_(c.hidden_act) {
  gate_proj = register_module("gate_proj", AdaptableLinear(c.hidden_size, c.intermediate_size, c.mlp_bias));
  up_proj = register_module("up_proj", AdaptableLinear(c.hidden_size, c.intermediate_size, c.mlp_bias));
  down_proj = register_module("down_proj", AdaptableLinear(c.intermediate_size, c.hidden_size, c.mlp_bias));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  auto gate = gate_proj(x);
  if (act_ == "silu") return down_proj(SwiGlu(gate, up_proj(x)));
  gate = torch::gelu(gate, act_ == "gelu_pytorch_tanh" ? "tanh" : "none");
  return down_proj(gate * up_proj(x));
}

DecoderLayerImpl::DecoderLayerImpl(const LlamaConfig& c) {
  self_attn = register_module("self_attn", Attention(c));
  mlp = register_module("mlp", Mlp(c));
  input_layernorm = register_module("input_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps, c.norm_offset));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps, c.norm_offset));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const AttentionContext& ctx, LayerKvCache* cache) {
  auto h = x + self_attn(input_layernorm(x), ctx, cache);
  return h + mlp(post_attention_layernorm(h));
}

LlamaModelImpl::LlamaModelImpl(const LlamaConfig& c) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) layers->push_back(DecoderLayer(c));
  norm = register_module("norm", RmsNorm(c.hidden_size, c.rms_norm_eps, c.norm_offset));
}

LlamaForCausalLMImpl::LlamaForCausalLMImpl(LlamaConfig config) : config_(std::move(config)) {
  model = register_module("model", LlamaModel(config_));
  if (!config_.tie_word_embeddings) {
    lm_head = register_module(
        "lm_head", torch::nn::Linear(torch::nn::LinearOptions(config_.hidden_size, config_.vocab_size).bias(false)));
  }
}

namespace {

// Positions restart at each document of a packed row: position = t - first index of t's segment.
torch::Tensor SegmentPositions(const torch::Tensor& segment_ids) {
  const int64_t t = segment_ids.size(1);
  auto index = torch::arange(t, segment_ids.options()).expand_as(segment_ids);
  auto starts = torch::ones_like(segment_ids, torch::kBool);
  if (t > 1) {
    starts.narrow(1, 1, t - 1).copy_(segment_ids.narrow(1, 1, t - 1) != segment_ids.narrow(1, 0, t - 1));
  }
  auto start_index = std::get<0>(torch::cummax(torch::where(starts, index, torch::zeros_like(index)), 1));
  return index - start_index;
}

}  // namespace

torch::Tensor LlamaForCausalLMImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& segment_ids) {
  const int64_t t = input_ids.size(1);
  const auto device = input_ids.device();
  AttentionContext ctx;
  auto row = torch::arange(t, torch::TensorOptions().dtype(torch::kInt64).device(device));
  auto mask = row.unsqueeze(1) >= row.unsqueeze(0);  // [T, T] causal
  if (config_.sliding_window > 0) {
    // Mistral: a query sees the last `sliding_window` keys, itself included.
    mask = mask.logical_and(row.unsqueeze(1) - row.unsqueeze(0) < config_.sliding_window);
  }
  torch::Tensor positions;
  if (segment_ids.defined()) {
    positions = SegmentPositions(segment_ids);
    auto same = segment_ids.unsqueeze(2) == segment_ids.unsqueeze(1);  // [B, T, T]
    ctx.mask = mask.unsqueeze(0).logical_and(same).unsqueeze(1);
  } else {
    positions = row.unsqueeze(0);
    // Plain causal attention goes without a mask, so that CUDA can use flash attention.
    if (config_.sliding_window > 0) ctx.mask = mask.unsqueeze(0).unsqueeze(0);
  }
  RopeTables tables = RopeFor(positions);
  ctx.cos = tables.cos;
  ctx.sin = tables.sin;

  auto h = model->embed_tokens(input_ids);
  if (config_.embedding_scale != 1.0) {
    // Gemma: the scale is a tensor of the model's dtype (sqrt(3072) is 55.5 in bfloat16).
    h = h * torch::scalar_tensor(config_.embedding_scale, h.options());
  }
  for (const auto& layer : *model->layers) h = layer->as<DecoderLayer>()->forward(h, ctx);
  return Logits(h);
}

torch::Tensor LlamaForCausalLMImpl::ForwardCached(const torch::Tensor& input_ids, const torch::Tensor& positions,
                                                  const torch::Tensor& mask, KvCache& cache, bool last_only) {
  AttentionContext ctx;
  ctx.mask = mask;
  RopeTables tables = RopeFor(positions);
  ctx.cos = tables.cos;
  ctx.sin = tables.sin;
  if (cache.layers.empty()) {
    cache.layers.resize(model->layers->size());
    for (auto& layer : cache.layers) layer.capacity = cache.capacity;
  }
  auto h = model->embed_tokens(input_ids);
  for (size_t i = 0; i < model->layers->size(); ++i) {
    h = model->layers[i]->as<DecoderLayer>()->forward(h, ctx, &cache.layers[i]);
  }
  return Logits(last_only ? h.narrow(1, h.size(1) - 1, 1) : h);
}

RopeTables LlamaForCausalLMImpl::RopeFor(const torch::Tensor& positions) {
  const auto device = positions.device();
  if (config_.rope.type != "dynamic" && (!rope_inv_freq_.defined() || rope_inv_freq_.device() != device)) {
    rope_inv_freq_ = RopeInverseFrequencies(config_.rope, RotaryDim(config_.rope, config_.head_dim), 0, &rope_scaling_)
                         .to(device, torch::kFloat32);
  }
  return MakeRopeTables(config_.rope, config_.head_dim, positions, rope_inv_freq_, rope_scaling_);
}

torch::Tensor LlamaForCausalLMImpl::Logits(const torch::Tensor& hidden) {
  auto h = model->norm(hidden);
  if (lm_head) return lm_head(h);
  return F::linear(h, model->embed_tokens->weight);
}

std::map<std::string, AdaptableLinear> LlamaForCausalLMImpl::Linears() {
  std::map<std::string, AdaptableLinear> out;
  for (size_t i = 0; i < model->layers->size(); ++i) {
    auto layer = model->layers[i]->as<DecoderLayer>();
    const std::string prefix = "model.layers." + std::to_string(i) + ".";
    out.emplace(prefix + "self_attn.q_proj", layer->self_attn->q_proj);
    out.emplace(prefix + "self_attn.k_proj", layer->self_attn->k_proj);
    out.emplace(prefix + "self_attn.v_proj", layer->self_attn->v_proj);
    out.emplace(prefix + "self_attn.o_proj", layer->self_attn->o_proj);
    out.emplace(prefix + "mlp.gate_proj", layer->mlp->gate_proj);
    out.emplace(prefix + "mlp.up_proj", layer->mlp->up_proj);
    out.emplace(prefix + "mlp.down_proj", layer->mlp->down_proj);
  }
  return out;
}

void LlamaForCausalLMImpl::InitializeWeights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& p : named_parameters()) {
    const std::string& name = p.key();
    torch::Tensor& w = p.value();
    if (name.find("norm") != std::string::npos) {
      w.fill_(1.0 - config_.norm_offset);  // a unit scale: Gemma stores it as 1 + w
    } else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
      w.zero_();
    } else {
      auto init = at::normal(0.0, 0.02, w.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
      w.copy_(init);
    }
  }
}

torch::Tensor NextTokenLoss(const torch::Tensor& logits, const torch::Tensor& targets) {
  return F::cross_entropy(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32), targets.reshape({-1}),
                          F::CrossEntropyFuncOptions().ignore_index(-100));
}

}  // namespace sweepd::models
