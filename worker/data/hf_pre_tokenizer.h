// The pre-tokenizers of tokenizer.json: Split (literal or regular expression, every split
// behaviour), ByteLevel (GPT-2's split and prefix space), Metaspace (prepend_scheme, split),
// Digits and Sequence, as Hugging Face tokenizers applies them (pre_tokenizers/*.rs).
#pragma once

#include <memory>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "worker/data/hf_aligned_text.h"

namespace sweepd::data::hf {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their pre-tokens, in order; empty pieces are dropped.
  virtual void Split(std::vector<AlignedText>& pieces) const = 0;
};

// The pre-tokenizer described by `config` (null: none, returns nullptr). Throws
// std::invalid_argument naming the unsupported type or the bad field.
std::unique_ptr<PreTokenizer> MakePreTokenizer(const nlohmann::json& config);

// True when `config` (or a part of a Sequence) is ByteLevel: the model then sees bytes
// through GPT-2's byte-to-character map.
bool IsByteLevel(const nlohmann::json& config);

}  // namespace sweepd::data::hf
