// Linear-layer shapes of Llama/Mistral/Gemma-family models from a Hugging Face config.json
// (or a built-in synthetic config), and the layers each track adapts.
#include "common/model_shapes.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <system_error>

namespace sweepd {
namespace {

using nlohmann::json;

const std::map<std::string, json>& SyntheticConfigs() {
  static const auto* configs = new std::map<std::string, json>{
      {"tiny",
       json{{"architectures", {"LlamaForCausalLM"}},
            {"model_type", "llama"},
            {"hidden_size", 128},
            {"intermediate_size", 352},
            {"num_hidden_layers", 4},
            {"num_attention_heads", 4},
            {"num_key_value_heads", 2},
            {"head_dim", 32},
            {"vocab_size", 260},
            {"max_position_embeddings", 512},
            {"rms_norm_eps", 1e-5},
            {"rope_theta", 10000.0},
            {"tie_word_embeddings", false},
            {"hidden_act", "silu"}}},
  };
  return *configs;
}

// The positive integer `key` of `c`, at most `max`; `fallback` when it is absent and one is given.
Result<int64_t> ConfigSize(const json& c, const std::string& key, int64_t max, const std::string& where,
                           std::optional<int64_t> fallback = std::nullopt) {
  if ((!c.contains(key) || c[key].is_null()) && fallback) return *fallback;
  const std::string wanted = "config needs a positive integer '" + key + "' of at most " + std::to_string(max);
  if (!c.contains(key) || !c[key].is_number_integer()) {
    std::string got = c.contains(key) ? c[key].dump() : "nothing";
    if (got.size() > 64) {  // cut at a UTF-8 character boundary
      size_t cut = 64;
      while (cut > 0 && (static_cast<unsigned char>(got[cut]) & 0xC0) == 0x80) --cut;
      got = got.substr(0, cut) + "...";
    }
    return Status::InvalidArgument(where + ": " + wanted + ", got " + got);
  }
  // Unsigned values beyond int64 read as negative through get<int64_t>: compare as unsigned first.
  if (c[key].is_number_unsigned() && c[key].get<uint64_t>() > static_cast<uint64_t>(max)) {
    return Status::InvalidArgument(where + ": " + wanted + ", got " + c[key].dump() +
                                   "; this is not a model sweepd can adapt (check the file)");
  }
  const int64_t v = c[key].get<int64_t>();
  if (v <= 0 || v > max) {
    return Status::InvalidArgument(where + ": " + wanted + ", got " + c[key].dump() +
                                   (v > max ? "; this is not a model sweepd can adapt (check the file)" : ""));
  }
  return v;
}

Result<ModelShape> ShapeFromConfig(const json& c, const std::string& where) {
  using L = ModelShapeLimits;
  Result<int64_t> hidden = ConfigSize(c, "hidden_size", L::kMaxHiddenSize, where);
  if (!hidden.ok()) return hidden.status();
  Result<int64_t> inter = ConfigSize(c, "intermediate_size", L::kMaxIntermediateSize, where);
  if (!inter.ok()) return inter.status();
  Result<int64_t> layers = ConfigSize(c, "num_hidden_layers", L::kMaxLayers, where);
  if (!layers.ok()) return layers.status();
  Result<int64_t> heads = ConfigSize(c, "num_attention_heads", L::kMaxHeads, where);
  if (!heads.ok()) return heads.status();
  Result<int64_t> vocab = ConfigSize(c, "vocab_size", L::kMaxVocabSize, where);
  if (!vocab.ok()) return vocab.status();
  Result<int64_t> kv = ConfigSize(c, "num_key_value_heads", *heads, where, *heads);
  if (!kv.ok()) return kv.status();
  Result<int64_t> dim = ConfigSize(c, "head_dim", L::kMaxHiddenSize, where, std::max<int64_t>(1, *hidden / *heads));
  if (!dim.ok()) return dim.status();
  if (*heads * *dim > L::kMaxHiddenSize) {
    return Status::InvalidArgument(where + ": num_attention_heads x head_dim is " + std::to_string(*heads * *dim) +
                                   ", over the limit of " + std::to_string(L::kMaxHiddenSize) + "; check the file");
  }
  const int64_t h = *hidden;
  const int64_t kv_heads = *kv;
  const int64_t head_dim = *dim;
  for (const char* key : {"attention_bias", "mlp_bias", "tie_word_embeddings"}) {
    if (c.contains(key) && !c[key].is_boolean()) {
      return Status::InvalidArgument(where + ": '" + key + "' must be true or false");
    }
  }
  if (c.contains("model_type") && !c["model_type"].is_string()) {
    return Status::InvalidArgument(where + ": 'model_type' must be a string, e.g. \"llama\"");
  }
  const bool attn_bias = c.value("attention_bias", false);
  const bool mlp_bias = c.value("mlp_bias", false);
  // GemmaConfig ties the embeddings unless told otherwise; Llama and Mistral do not.
  const bool tied = c.value("tie_word_embeddings", c.value("model_type", "") == "gemma");

  ModelShape shape;
  shape.config = c;
  struct Proj {
    const char* block;
    const char* name;
    int64_t d_out, d_in;
    bool bias, ff;
  };
  const Proj projs[] = {
      {"self_attn", "q_proj", *heads * head_dim, h, attn_bias, false},
      {"self_attn", "k_proj", kv_heads * head_dim, h, attn_bias, false},
      {"self_attn", "v_proj", kv_heads * head_dim, h, attn_bias, false},
      {"self_attn", "o_proj", h, *heads * head_dim, attn_bias, false},
      {"mlp", "gate_proj", *inter, h, mlp_bias, false},
      {"mlp", "up_proj", *inter, h, mlp_bias, false},
      // PEFT's IA3 default for Llama: down_proj is its feed-forward module (scales inputs).
      {"mlp", "down_proj", h, *inter, mlp_bias, true},
  };
  int64_t total = *vocab * h * (tied ? 1 : 2) + h;  // embeddings, lm_head, final norm
  for (int64_t i = 0; i < *layers; ++i) {
    total += 2 * h;  // the two RMSNorms
    for (const Proj& p : projs) {
      LinearShape l;
      l.name = "model.layers." + std::to_string(i) + "." + p.block + "." + p.name;
      l.d_out = p.d_out;
      l.d_in = p.d_in;
      l.has_bias = p.bias;
      l.feed_forward = p.ff;
      total += l.d_out * l.d_in + (l.has_bias ? l.d_out : 0);
      shape.linears.push_back(std::move(l));
    }
  }
  shape.total_params = total;
  return shape;
}

// True when `module` names `layer`: the last path components are equal.
bool Matches(const std::string& layer, const std::string& module) {
  if (layer == module) return true;
  return layer.size() > module.size() && layer.compare(layer.size() - module.size(), module.size(), module) == 0 &&
         layer[layer.size() - module.size() - 1] == '.';
}

}  // namespace

Result<nlohmann::json> SyntheticModelConfig(const std::string& source) {
  const std::string prefix = "synthetic:";
  const std::string name = source.rfind(prefix, 0) == 0 ? source.substr(prefix.size()) : source;
  auto it = SyntheticConfigs().find(name);
  if (it == SyntheticConfigs().end()) {
    std::string known;
    for (const auto& [n, _] : SyntheticConfigs()) known += (known.empty() ? "" : ", ") + prefix + n;
    return Status::InvalidArgument("unknown synthetic model '" + source + "'; known: " + known);
  }
  return it->second;
}

Result<ModelShape> LoadModelShape(const std::string& source) {
  if (source.rfind("synthetic:", 0) == 0) {
    Result<json> config = SyntheticModelConfig(source);
    if (!config.ok()) return config.status();
    return ShapeFromConfig(*config, source);
  }
  const std::filesystem::path path = std::filesystem::path(source) / "config.json";
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
  if (!ec && std::filesystem::exists(st) && !std::filesystem::is_regular_file(st)) {
    return Status::InvalidArgument(path.string() + " is not a regular file; base.model names a checkpoint folder");
  }
  if (!ec && std::filesystem::is_regular_file(st) &&
      std::filesystem::file_size(path, ec) > static_cast<uintmax_t>(ModelShapeLimits::kMaxConfigBytes)) {
    return Status::InvalidArgument(path.string() + " is over the 1 MiB limit for a config.json; check the file");
  }
  std::ifstream in(path);
  if (!in) {
    return Status::NotFound("cannot read " + path.string() +
                            ": model.source must be synthetic:<name> or a checkpoint folder with config.json");
  }
  json config = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return Status::InvalidArgument(path.string() + ": not a JSON object");
  }
  return ShapeFromConfig(config, path.string());
}

Result<std::vector<LinearShape>> SelectTrack(const ModelShape& model, const TrackSpec& track) {
  std::vector<std::string> modules = track.modules;
  if (modules.empty()) {
    if (track.name == "A") modules = {"q_proj", "v_proj"};
    else if (track.name == "B") modules = {"all-linear"};
    else {
      return Status::InvalidArgument("track '" + track.name +
                                     "' names no modules; use A, B, or list track.modules");
    }
  }
  if (std::find(modules.begin(), modules.end(), "all-linear") != modules.end()) return model.linears;
  std::vector<LinearShape> selected;
  std::string unmatched;
  for (const std::string& m : modules) {
    bool any = false;
    for (const LinearShape& l : model.linears) any = any || Matches(l.name, m);
    if (!any) unmatched += (unmatched.empty() ? "" : ", ") + m;
  }
  if (!unmatched.empty()) {
    return Status::InvalidArgument("track '" + track.name + "': modules match no linear layer: " + unmatched +
                                   " (layers are named like " +
                                   (model.linears.empty() ? std::string("?") : model.linears.front().name) + ")");
  }
  for (const LinearShape& l : model.linears) {
    for (const std::string& m : modules) {
      if (Matches(l.name, m)) {
        selected.push_back(l);
        break;
      }
    }
  }
  return selected;
}

}  // namespace sweepd
