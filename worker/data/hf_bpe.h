// The BPE model of tokenizer.json (Sennrich et al. 2016, as Hugging Face tokenizers'
// models/bpe implements it): merges by rank, ignore_merges, byte_fallback to <0xXX>
// pieces, unk with fuse_unk. A byte-level model (GPT-2, Radford et al. 2019; Llama 3, Qwen)
// looks raw bytes up in a vocabulary whose keys were mapped back through GPT-2's
// byte-to-character table once at load, which is the same as mapping every input byte.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sweepd::data::hf {

// One token of a piece: its id and its byte range within the piece.
struct PieceToken {
  int64_t id;
  uint32_t begin, end;
};

class BpeModel {
 public:
  // From tokenizer.json's "model" object. Throws std::invalid_argument naming the field.
  BpeModel(const nlohmann::json& model, bool byte_level);
  ~BpeModel();

  // Appends the tokens of one pre-token to `out`. Thread-safe.
  void Tokenize(std::string_view piece, std::vector<PieceToken>& out) const;

  // The id of a vocabulary entry as tokenizer.json writes it, or -1.
  int64_t TokenId(const std::string& token) const;
  // The vocabulary entry of `id` as tokenizer.json writes it ("Ġhello", "▁hello", "<0x0A>"),
  // or nullptr for an id outside the vocabulary.
  const std::string* Token(int64_t id) const;
  // One past the largest id.
  int64_t Size() const { return static_cast<int64_t>(tokens_.size()); }

 private:
  struct Symbol {
    int64_t id;
    uint32_t begin, end;
    int32_t prev, next;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Vocab = std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>>;

  void InitialSymbols(std::string_view piece, std::vector<Symbol>& symbols) const;
  void Merge(std::vector<Symbol>& symbols) const;

  bool byte_level_;
  bool ignore_merges_ = false;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  int64_t unk_ = -1;
  Vocab vocab_;                      // keys in model space: raw bytes when byte-level
  std::vector<std::string> tokens_;  // by id, as tokenizer.json writes them ("" where no entry)
  int64_t byte_ids_[256];            // <0xXX> pieces (byte_fallback), or the byte's entry (byte-level)
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;

  // Tokens of short, frequent pieces, as Hugging Face tokenizers caches them.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<PieceToken>, StringHash, std::equal_to<>> cache_;
};

// GPT-2's byte-to-character table (tokenizers' pre_tokenizers/byte_level.rs bytes_char):
// printable bytes map to themselves, the others to U+0100 onwards. Each entry is UTF-8.
const std::vector<std::string>& ByteToChar();
// The bytes a byte-level token stands for, or false when a character is outside the table.
bool CharsToBytes(std::string_view token, std::string& bytes);

}  // namespace sweepd::data::hf
