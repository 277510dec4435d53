// The rule every tokenizer's offsets follow (TokenOffset in worker/data/tokenizer.h): raw
// ranges from a library (SentencePiece gives every byte piece of a character the character's
// span) become disjoint and ascending.
#include <algorithm>

#include "worker/data/tokenizer.h"

namespace sweepd::data {

void MakeOffsetsDisjoint(std::vector<TokenOffset>& offsets, size_t text_size) {
  size_t last_end = 0;
  for (auto& t : offsets) {
    t.end = std::min(t.end, text_size);
    t.begin = std::min(std::max(t.begin, last_end), text_size);
    t.end = std::max(t.end, t.begin);
    last_end = t.end;
  }
}

}  // namespace sweepd::data
