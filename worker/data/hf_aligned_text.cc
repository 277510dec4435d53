// Aligned text for the tokenizer.json pipeline (see hf_aligned_text.h).
#include "worker/data/hf_aligned_text.h"

namespace sweepd::data::hf {

AlignedText AlignedText::Original(std::string_view text, uint32_t origin, bool track) {
  AlignedText t;
  t.text.assign(text);
  t.at_input_start = origin == 0;
  if (track) {
    t.begin.resize(text.size());
    t.end.resize(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      t.begin[i] = origin + static_cast<uint32_t>(i);
      t.end[i] = origin + static_cast<uint32_t>(i) + 1;
    }
  }
  return t;
}

AlignedText AlignedText::Slice(size_t from, size_t to) const {
  AlignedText t;
  t.text.assign(text, from, to - from);
  t.at_input_start = at_input_start && from == 0;
  if (tracked()) {
    t.begin.assign(begin.begin() + from, begin.begin() + to);
    t.end.assign(end.begin() + from, end.begin() + to);
  }
  return t;
}

void AlignedText::AppendRewrite(std::string_view piece, const AlignedText& source, size_t src_begin,
                                size_t src_end) {
  text.append(piece);
  if (!source.tracked()) return;
  uint32_t b, e;
  if (src_begin < src_end) {
    b = source.begin[src_begin];
    e = source.end[src_end - 1];
  } else if (src_begin < source.text.size()) {
    b = e = source.begin[src_begin];
  } else {
    b = e = source.end.back();
  }
  begin.insert(begin.end(), piece.size(), b);
  end.insert(end.end(), piece.size(), e);
}

void AlignedText::AppendCopy(const AlignedText& source, size_t from, size_t to) {
  text.append(source.text, from, to - from);
  if (!source.tracked()) return;
  begin.insert(begin.end(), source.begin.begin() + from, source.begin.begin() + to);
  end.insert(end.end(), source.end.begin() + from, source.end.begin() + to);
}

}  // namespace sweepd::data::hf
