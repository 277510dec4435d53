// Packing of tokenized examples into rows (see packing.h).
#include "worker/data/packing.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>

#include "worker/failures.h"
#include "worker/data/chat_template.h"

namespace sweepd::data {

TokenizedExample TokenizeExample(const InstructionExample& example, const Tokenizer& tokenizer,
                                 const ChatTemplate* chat) {
  TokenizedExample t;
  if (!example.text.empty()) {  // a rendered chat: its template wrote BOS and the turns' ends
    ChatTokens tokens = TokenizeChat(example, chat, tokenizer);
    t.ids = std::move(tokens.ids);
    t.trained = std::move(tokens.trained);
    return t;
  }
  t.ids.push_back(tokenizer.Bos());
  t.trained.push_back(false);
  for (int64_t id : tokenizer.Encode(example.prompt)) {
    t.ids.push_back(id);
    t.trained.push_back(false);
  }
  for (int64_t id : tokenizer.Encode(example.response)) {
    t.ids.push_back(id);
    t.trained.push_back(true);
  }
  t.ids.push_back(tokenizer.Eos());
  t.trained.push_back(true);
  return t;
}

Packer::Packer(std::vector<TokenizedExample> examples, uint64_t seed, int64_t pad_id)
    : examples_(std::move(examples)), seed_(seed), pad_id_(pad_id) {
  if (examples_.empty()) throw InvalidInput("no training examples");
}

const TokenizedExample& Packer::At(int64_t position) {
  const int64_t n = static_cast<int64_t>(examples_.size());
  const int64_t epoch = position / n;
  if (epoch != epoch_) {
    order_.resize(examples_.size());
    std::iota(order_.begin(), order_.end(), 0);
    std::mt19937_64 rng(seed_ * 1000003ULL + static_cast<uint64_t>(epoch));
    std::shuffle(order_.begin(), order_.end(), rng);
    epoch_ = epoch;
  }
  return examples_[order_[position % n]];
}

PackedRows Packer::NextRows(int64_t rows, int64_t seq_len) {
  PackedRows out;
  out.input_ids = torch::full({rows, seq_len}, pad_id_, torch::kInt64);
  out.targets = torch::full({rows, seq_len}, -100, torch::kInt64);
  out.segment_ids = torch::full({rows, seq_len}, -1, torch::kInt64);
  auto ids = out.input_ids.accessor<int64_t, 2>();
  auto targets = out.targets.accessor<int64_t, 2>();
  auto segments = out.segment_ids.accessor<int64_t, 2>();
  for (int64_t r = 0; r < rows; ++r) {
    int64_t pos = 0;
    int64_t segment = 0;
    while (pos < seq_len) {
      const TokenizedExample& ex = At(cursor_);
      const int64_t length = static_cast<int64_t>(ex.ids.size());
      // An example that does not fit waits for the next row, unless the row is empty: then
      // it keeps its last seq_len tokens, so that the response (what is trained) survives
      // and the beginning of the prompt is what is cut.
      if (pos > 0 && pos + length > seq_len) break;
      const int64_t n = std::min(length, seq_len - pos);
      const int64_t skip = length - n;
      if (skip > 0) ++out.truncated_examples;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t j = skip + i;
        ids[r][pos + i] = ex.ids[j];
        segments[r][pos + i] = segment;
        if (j + 1 < length && ex.trained[j + 1]) {
          targets[r][pos + i] = ex.ids[j + 1];
          ++out.target_tokens;
        }
      }
      out.tokens += n;
      pos += n;
      ++segment;
      ++cursor_;
    }
    // Padding forms its own segment so that it attends only to itself.
    for (int64_t p = pos; p < seq_len; ++p) segments[r][p] = segment;
  }
  return out;
}

}  // namespace sweepd::data
