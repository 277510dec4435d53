// The decoders of tokenizer.json: ByteLevel, ByteFallback, Metaspace, Fuse, Strip, Replace
// and Sequence, as Hugging Face tokenizers chains them (decoders/*.rs): each turns the list
// of token strings into another list; the pieces are joined at the end.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sweepd::data::hf {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void Decode(std::vector<std::string>& tokens) const = 0;
};

// The decoder described by `config` (null: none, returns nullptr). Throws
// std::invalid_argument naming the unsupported type.
std::unique_ptr<Decoder> MakeDecoder(const nlohmann::json& config);

// `bytes` with every ill-formed UTF-8 sequence replaced by U+FFFD (Rust's from_utf8_lossy).
std::string Utf8Lossy(const std::string& bytes);

}  // namespace sweepd::data::hf
