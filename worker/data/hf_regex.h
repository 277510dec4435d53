// The regular expressions of tokenizer.json (Split pre-tokenizers, Replace patterns, the
// GPT-2 split of ByteLevel) through PCRE2 with UTF and UCP, so that \p{L}, \p{N} and \s are
// Unicode classes as in the Oniguruma engine Hugging Face tokenizers uses; JIT-compiled.
// Without PCRE2 in the build, constructing one throws a one-line message.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace sweepd::data::hf {

class Regex {
 public:
  // `pattern` is a regular expression, or a literal string when `literal`. Throws
  // std::invalid_argument with PCRE2's message (and the offset in the pattern) if it does
  // not compile.
  Regex(const std::string& pattern, bool literal);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Calls on_match(begin, end) for every non-overlapping match in `text`, left to right.
  // Safe to call from several threads at once.
  void ForEachMatch(std::string_view text, const std::function<void(size_t, size_t)>& on_match) const;

 private:
  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
};

// True when this build can compile tokenizer.json regular expressions.
bool HaveRegexEngine();

}  // namespace sweepd::data::hf
