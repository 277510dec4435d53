// `sweep-train conformance DIR/tokenizer.json`: a Hugging Face tokenizer.json against the
// reference.json beside it (a list of {text, ids}, ids as the tokenizers library encodes
// them with add_special_tokens=False, so special tokens written in a text are matched).
#pragma once

#include <ostream>
#include <string>

namespace sweepd::trainer {

// Prints one line for the file and one per text whose ids differ (text, expected, got);
// returns 0 when all match, 1 otherwise. Throws std::invalid_argument naming the file when
// the tokenizer or the reference cannot be used.
int CheckHfTokenizerConformance(const std::string& path, std::ostream& out);

}  // namespace sweepd::trainer
