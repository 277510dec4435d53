// Sequence packing: tokenized examples are laid end to end into fixed-length rows; each
// keeps its own segment id so attention and positions stay inside it, and only response
// tokens carry targets.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "worker/data/examples.h"
#include "worker/data/tokenizer.h"

namespace sweepd::data {

struct TokenizedExample {
  std::vector<int64_t> ids;   // BOS, prompt, response, EOS
  std::vector<bool> trained;  // per id: is it a target (response and EOS)
};

struct ChatTemplate;

// A rendered chat (example.text) is tokenized with the added tokens of `chat` (may be null).
TokenizedExample TokenizeExample(const InstructionExample& example, const Tokenizer& tokenizer,
                                 const ChatTemplate* chat = nullptr);

struct PackedRows {
  torch::Tensor input_ids;    // [rows, seq_len] int64
  torch::Tensor targets;      // [rows, seq_len] int64, -100 where nothing is predicted
  torch::Tensor segment_ids;  // [rows, seq_len] int64
  int64_t tokens = 0;         // non-padding tokens
  int64_t target_tokens = 0;  // tokens that carry a target
  int64_t truncated_examples = 0;  // longer than a row: their first tokens were cut
};

// Walks the examples in a seeded order, one shuffled epoch after another. The cursor is
// the only state, so a resumed run that restores it sees exactly the same rows.
class Packer {
 public:
  Packer(std::vector<TokenizedExample> examples, uint64_t seed, int64_t pad_id);

  PackedRows NextRows(int64_t rows, int64_t seq_len);
  int64_t cursor() const { return cursor_; }
  void set_cursor(int64_t cursor) { cursor_ = cursor; }

 private:
  const TokenizedExample& At(int64_t position);

  std::vector<TokenizedExample> examples_;
  uint64_t seed_;
  int64_t pad_id_;
  int64_t cursor_ = 0;
  int64_t epoch_ = -1;
  std::vector<int64_t> order_;
};

}  // namespace sweepd::data
