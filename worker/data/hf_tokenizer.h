// Hugging Face tokenizer.json files (the format of the `tokenizers` library) as used by the
// Llama 2, Llama 3, Mistral, Gemma and Qwen families: added and special tokens matched
// before the model, then normalizer, pre-tokenizer and a BPE model (hf_normalizer.h,
// hf_pre_tokenizer.h, hf_bpe.h); decoding through the file's decoder (hf_decoder.h).
// BOS and EOS come from tokenizer_config.json beside the file, else its post_processor.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "worker/data/tokenizer.h"

namespace sweepd::data {

class HfTokenizer : public Tokenizer {
 public:
  // Reads `path` and, when present, tokenizer_config.json in the same folder. Throws
  // std::invalid_argument "PATH: problem" for a truncated or malformed file or a part this
  // reader does not support (which part, and what is supported).
  static std::unique_ptr<HfTokenizer> Load(const std::string& path);
  ~HfTokenizer() override;
  HfTokenizer(const HfTokenizer&) = delete;
  HfTokenizer& operator=(const HfTokenizer&) = delete;

  // Plain text: a special token written in it ("<|eot_id|>") stays text. Non-special added
  // tokens are matched, as the library does.
  std::vector<int64_t> Encode(const std::string& text) const override;
  std::vector<TokenOffset> EncodeWithOffsets(const std::string& text) const override;
  // Special tokens written in `text` become their ids too, as the library's encode does by
  // default (for text rendered from a chat template).
  std::vector<TokenOffset> EncodeWithSpecialTokens(const std::string& text) const;
  // Special tokens are skipped (the library's skip_special_tokens=True).
  std::string Decode(const std::vector<int64_t>& ids) const override;

  int64_t VocabSize() const override;
  // -1 when the files name no such token.
  int64_t Bos() const override;
  int64_t Eos() const override;
  // Whether encoding for the model starts with BOS / ends with EOS (add_bos_token and
  // add_eos_token of tokenizer_config.json, else the post_processor's template).
  bool AddsBos() const;
  bool AddsEos() const;
  // The id of a vocabulary entry or added token as the file writes it, or -1.
  int64_t TokenId(const std::string& token) const;

 private:
  struct Impl;
  explicit HfTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sweepd::data
