// Text that a tokenizer.json pipeline rewrites (normalizers, pre-tokenizers) together with,
// per byte, the range of the original input it came from: what Hugging Face tokenizers
// calls a NormalizedString, reduced to byte offsets. Alignment is kept only when asked
// (offsets cost a copy of every byte's range), so plain encoding pays nothing for it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sweepd::data::hf {

struct AlignedText {
  std::string text;
  // Per byte of `text`: the original [begin, end). Empty when offsets are not tracked.
  std::vector<uint32_t> begin;
  std::vector<uint32_t> end;
  // True when this text starts where the whole input starts (Metaspace's prepend_scheme
  // "first" prepends only there).
  bool at_input_start = false;

  bool tracked() const { return begin.size() == text.size() && !text.empty(); }

  // `text` as original bytes [origin, origin + size), aligned when `track`.
  static AlignedText Original(std::string_view text, uint32_t origin, bool track);

  // Bytes [from, to) of this text, with their alignment.
  AlignedText Slice(size_t from, size_t to) const;

  // Appends `piece` in place of original bytes [src_begin, src_end) of this text's own
  // numbering (a rewrite of bytes [src_begin, src_end) of the text before the rewrite,
  // given by `source`): every new byte gets the whole source range. An insertion
  // (src_begin == src_end) gets an empty range where the source continues.
  void AppendRewrite(std::string_view piece, const AlignedText& source, size_t src_begin, size_t src_end);

  // Appends bytes [from, to) of `source` unchanged.
  void AppendCopy(const AlignedText& source, size_t from, size_t to);
};

// True for the bytes of a well-formed UTF-8 sequence start (not a continuation byte).
inline bool IsUtf8Start(unsigned char c) { return (c & 0xC0) != 0x80; }

// Length of the UTF-8 character starting with byte `c` (1 for a stray byte).
inline size_t Utf8Length(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 0x6) return 2;
  if ((c >> 4) == 0xE) return 3;
  if ((c >> 3) == 0x1E) return 4;
  return 1;
}

}  // namespace sweepd::data::hf
