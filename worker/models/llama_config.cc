// Parsing of Llama/Mistral/Gemma config.json files into LlamaConfig.
#include "worker/models/llama_config.h"

#include <cmath>
#include <set>

namespace sweepd::models {
namespace {

using nlohmann::json;

Status ReadInt(const json& j, const char* key, bool required, int64_t& out,
               const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) return Status::InvalidArgument(where + ": missing integer '" + key + "'");
    return Status::Ok();
  }
  if (!j[key].is_number_integer()) {
    return Status::InvalidArgument(where + ": '" + key + "' must be an integer, not " + j[key].dump());
  }
  out = j[key].get<int64_t>();
  return Status::Ok();
}

Status ReadDouble(const json& j, const char* key, double& out, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return Status::Ok();
  if (!j[key].is_number()) {
    return Status::InvalidArgument(where + ": '" + key + "' must be a number, not " + j[key].dump());
  }
  out = j[key].get<double>();
  return Status::Ok();
}

// The first integer of `key` when it is a list (some configs list several EOS ids).
void ReadTokenId(const json& j, const char* key, int64_t& out) {
  if (!j.contains(key)) return;
  if (j[key].is_number_integer()) out = j[key].get<int64_t>();
  if (j[key].is_array() && !j[key].empty() && j[key][0].is_number_integer()) {
    out = j[key][0].get<int64_t>();
  }
}

// The MLP activation. Gemma files name it in hidden_activation; transformers (since 4.39)
// takes the tanh-approximated GELU when that is absent, whatever hidden_act says.
Status ReadActivation(const json& j, const std::string& model_type, const std::string& where,
                      std::string& out) {
  const char* key = "hidden_act";
  if (model_type == "gemma") {
    key = "hidden_activation";
    out = "gelu_pytorch_tanh";
  }
  if (!j.contains(key) || j[key].is_null()) return Status::Ok();
  static const std::set<std::string> kActivations = {"silu", "gelu_pytorch_tanh", "gelu"};
  if (!j[key].is_string() || kActivations.count(j[key].get<std::string>()) == 0) {
    return Status::InvalidArgument(where + ": " + key + " " + j[key].dump() +
                                   " is not supported (supported: silu, gelu_pytorch_tanh, gelu)");
  }
  out = j[key].get<std::string>();
  return Status::Ok();
}

Status ReadRope(const json& j, const std::string& where, RopeConfig& rope) {
  // Newer files: rope_parameters {rope_type, rope_theta, factor, ...}. Older files:
  // top-level rope_theta and an optional rope_scaling {type|rope_type, factor, ...}.
  const json* params = nullptr;
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    params = &j["rope_parameters"];
  } else if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    params = &j["rope_scaling"];
  }
  SWEEPD_RETURN_IF_ERROR(ReadDouble(j, "rope_theta", rope.theta, where));
  SWEEPD_RETURN_IF_ERROR(ReadDouble(j, "partial_rotary_factor", rope.partial_rotary_factor, where));
  if (params == nullptr) return Status::Ok();
  const json& p = *params;
  if (p.contains("rope_type") && p["rope_type"].is_string()) {
    rope.type = p["rope_type"].get<std::string>();
  } else if (p.contains("type") && p["type"].is_string()) {
    rope.type = p["type"].get<std::string>();
  }
  const std::string w = where + ": rope parameters";
  SWEEPD_RETURN_IF_ERROR(ReadDouble(p, "rope_theta", rope.theta, w));
  SWEEPD_RETURN_IF_ERROR(ReadDouble(p, "partial_rotary_factor", rope.partial_rotary_factor, w));
  SWEEPD_RETURN_IF_ERROR(ReadDouble(p, "factor", rope.factor, w));
  SWEEPD_RETURN_IF_ERROR(ReadInt(p, "original_max_position_embeddings", false,
                                 rope.original_max_position_embeddings, w));
  SWEEPD_RETURN_IF_ERROR(ReadDouble(p, "low_freq_factor", rope.low_freq_factor, w));
  SWEEPD_RETURN_IF_ERROR(ReadDouble(p, "high_freq_factor", rope.high_freq_factor, w));
  SWEEPD_RETURN_IF_ERROR(ReadDouble(p, "beta_fast", rope.beta_fast, w));
  SWEEPD_RETURN_IF_ERROR(ReadDouble(p, "beta_slow", rope.beta_slow, w));
  SWEEPD_RETURN_IF_ERROR(ReadDouble(p, "mscale", rope.mscale, w));
  SWEEPD_RETURN_IF_ERROR(ReadDouble(p, "mscale_all_dim", rope.mscale_all_dim, w));
  SWEEPD_RETURN_IF_ERROR(ReadDouble(p, "attention_factor", rope.attention_factor, w));
  if (p.contains("truncate") && p["truncate"].is_boolean()) rope.truncate = p["truncate"].get<bool>();
  static const std::set<std::string> kKnown = {"default", "linear", "dynamic", "llama3", "yarn"};
  if (kKnown.count(rope.type) == 0) {
    return Status::InvalidArgument(where + ": unsupported rope type '" + rope.type +
                                   "' (supported: default, linear, dynamic, llama3, yarn)");
  }
  if (rope.type != "default" && rope.factor <= 0) {
    return Status::InvalidArgument(where + ": rope factor must be positive");
  }
  return Status::Ok();
}

}  // namespace

Result<LlamaConfig> LlamaConfigFromJson(const json& j, const std::string& where) {
  if (!j.is_object()) return Status::InvalidArgument(where + ": config is not a JSON object");
  LlamaConfig c;
  if (j.contains("model_type") && j["model_type"].is_string()) {
    c.model_type = j["model_type"].get<std::string>();
  }
  static const std::set<std::string> kTypes = {"llama", "mistral", "gemma"};
  if (kTypes.count(c.model_type) == 0) {
    return Status::InvalidArgument(where + ": model_type '" + c.model_type +
                                   "' is not supported (supported: llama, mistral, gemma)");
  }
  SWEEPD_RETURN_IF_ERROR(ReadActivation(j, c.model_type, where, c.hidden_act));
  SWEEPD_RETURN_IF_ERROR(ReadInt(j, "hidden_size", true, c.hidden_size, where));
  SWEEPD_RETURN_IF_ERROR(ReadInt(j, "intermediate_size", true, c.intermediate_size, where));
  SWEEPD_RETURN_IF_ERROR(ReadInt(j, "num_hidden_layers", true, c.num_layers, where));
  SWEEPD_RETURN_IF_ERROR(ReadInt(j, "num_attention_heads", true, c.num_heads, where));
  SWEEPD_RETURN_IF_ERROR(ReadInt(j, "vocab_size", true, c.vocab_size, where));
  c.num_kv_heads = c.num_heads;
  SWEEPD_RETURN_IF_ERROR(ReadInt(j, "num_key_value_heads", false, c.num_kv_heads, where));
  if (c.num_heads <= 0 || c.hidden_size <= 0 || c.num_kv_heads <= 0 ||
      c.num_heads % c.num_kv_heads != 0) {
    return Status::InvalidArgument(where + ": num_attention_heads must be a positive multiple of "
                                   "num_key_value_heads");
  }
  c.head_dim = c.hidden_size / c.num_heads;
  SWEEPD_RETURN_IF_ERROR(ReadInt(j, "head_dim", false, c.head_dim, where));
  SWEEPD_RETURN_IF_ERROR(
      ReadInt(j, "max_position_embeddings", false, c.max_position_embeddings, where));
  SWEEPD_RETURN_IF_ERROR(ReadDouble(j, "rms_norm_eps", c.rms_norm_eps, where));
  SWEEPD_RETURN_IF_ERROR(ReadInt(j, "sliding_window", false, c.sliding_window, where));
  if (c.model_type == "llama") c.sliding_window = 0;  // Llama files may carry a stray value
  if (j.contains("use_sliding_window") && j["use_sliding_window"] == false) c.sliding_window = 0;
  c.tie_word_embeddings = j.value("tie_word_embeddings", false);
  c.attention_bias = j.value("attention_bias", false);
  c.mlp_bias = j.value("mlp_bias", false);
  ReadTokenId(j, "bos_token_id", c.bos_token_id);
  ReadTokenId(j, "eos_token_id", c.eos_token_id);
  if (c.model_type == "gemma") {
    if (j.value("use_bidirectional_attention", json()) == true) {
      return Status::InvalidArgument(where + ": use_bidirectional_attention is not supported "
                                     "(sweep-train trains causal language models)");
    }
    c.embedding_scale = std::sqrt(static_cast<double>(c.hidden_size));
    c.norm_offset = 1.0;
    c.tie_word_embeddings = j.value("tie_word_embeddings", true);  // GemmaConfig's default
  }
  SWEEPD_RETURN_IF_ERROR(ReadRope(j, where, c.rope));
  if (c.rope.original_max_position_embeddings == 0) {
    c.rope.original_max_position_embeddings = c.max_position_embeddings;
  }
  return c;
}

}  // namespace sweepd::models
