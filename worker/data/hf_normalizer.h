// The normalizers of tokenizer.json: Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase,
// Strip and Sequence, as Hugging Face tokenizers applies them (normalizers/*.rs), keeping
// each byte's original range. Unicode normal forms go through ICU.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "worker/data/hf_aligned_text.h"

namespace sweepd::data::hf {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void Apply(AlignedText& text) const = 0;
};

// The normalizer described by `config` (null: none, returns nullptr). Throws
// std::invalid_argument naming the unsupported type or the bad field.
std::unique_ptr<Normalizer> MakeNormalizer(const nlohmann::json& config);

// The pattern of a Replace normalizer or decoder, {"String": s} or {"Regex": r}: the text
// and whether it is a literal. `where` names the component in the message.
std::pair<std::string, bool> PatternOf(const nlohmann::json& config, const std::string& where);

}  // namespace sweepd::data::hf
