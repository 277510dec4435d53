// UTF-8 as RFC 3629 defines it (no overlong forms, no surrogates, nothing above U+10FFFF):
// the one check that the spec reader, the tokenizer's decoder and the worker's stderr tail use.
#pragma once

#include <cstddef>
#include <string_view>

namespace sweepd {

// The length (1..4) of the well-formed UTF-8 sequence that starts at text[i], or 0 when the
// bytes there are not one. `i` must be below text.size().
size_t Utf8SequenceLength(std::string_view text, size_t i);

}  // namespace sweepd
