// Text <-> token ids. Implementations: a byte-level tokenizer for the synthetic benchmark
// (ids 0..255 are bytes, then specials), SentencePiece .model files and Hugging Face
// tokenizer.json files (worker/data/hf_tokenizer.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sweepd::data {

// One token and the bytes of the input it came from, [begin, end). Offsets are disjoint and
// ascending: a byte that several tokens share (a character split into byte tokens) belongs
// to the first of them, the others get an empty range at its end.
struct TokenOffset {
  int64_t id;
  size_t begin;
  size_t end;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Ids of `text` without BOS/EOS.
  virtual std::vector<int64_t> Encode(const std::string& text) const = 0;
  // The same ids as Encode, each with its byte range in `text` (for loss masks by character
  // offsets, e.g. the assistant turns of a chat template).
  virtual std::vector<TokenOffset> EncodeWithOffsets(const std::string& text) const = 0;
  virtual std::string Decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t VocabSize() const = 0;
  virtual int64_t Bos() const = 0;
  virtual int64_t Eos() const = 0;
};

// Bytes are ids 0..255; BOS = 256, EOS = 257, PAD = 258 (vocabulary 260 with one spare).
class ByteTokenizer : public Tokenizer {
 public:
  static constexpr int64_t kBos = 256;
  static constexpr int64_t kEos = 257;
  static constexpr int64_t kPad = 258;
  static constexpr int64_t kVocab = 260;

  std::vector<int64_t> Encode(const std::string& text) const override;
  std::vector<TokenOffset> EncodeWithOffsets(const std::string& text) const override;
  std::string Decode(const std::vector<int64_t>& ids) const override;
  int64_t VocabSize() const override { return kVocab; }
  int64_t Bos() const override { return kBos; }
  int64_t Eos() const override { return kEos; }
};

// Makes raw per-token ranges follow TokenOffset's rule: each begins no earlier than the one
// before it ends, and none ends before it begins or past `text_size`.
void MakeOffsetsDisjoint(std::vector<TokenOffset>& offsets, size_t text_size);

// The tokenizer file of a Hugging Face model folder: tokenizer.json when it has one (the
// format most releases ship first, and the only one Llama 3 ships), else tokenizer.model.
// Throws std::invalid_argument naming the folder when it has neither.
std::string ModelFolderTokenizer(const std::string& folder);

// A tokenizer file by its kind: a .json file is a Hugging Face tokenizer.json
// (worker/data/hf_tokenizer.h), anything else a SentencePiece model; a folder is
// ModelFolderTokenizer's choice in it. Throws std::invalid_argument naming the file.
std::unique_ptr<Tokenizer> LoadTokenizerFile(const std::string& path);

// A SentencePiece model file. Throws std::runtime_error naming the file when it cannot be
// loaded (or when this build has no SentencePiece).
std::unique_ptr<Tokenizer> LoadSentencePieceTokenizer(const std::string& path);

}  // namespace sweepd::data
