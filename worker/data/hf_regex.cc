// PCRE2 behind hf::Regex (see hf_regex.h). Options: UTF and UCP for the Unicode classes,
// MATCH_INVALID_UTF so that a stray byte in a data file cannot make a match fail.
#include "worker/data/hf_regex.h"

#include <stdexcept>

#ifdef SWEEPD_HAVE_PCRE2
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#endif

namespace sweepd::data::hf {

#ifdef SWEEPD_HAVE_PCRE2

struct Regex::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Compiled() { pcre2_code_free(code); }
};

bool HaveRegexEngine() { return true; }

Regex::Regex(const std::string& pattern, bool literal) : compiled_(std::make_unique<Compiled>()) {
  int error = 0;
  PCRE2_SIZE at = 0;
  // PCRE2_LITERAL refuses UCP (it has no classes to apply it to).
  const uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options,
                                  &error, &at, nullptr);
  if (compiled_->code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    throw std::invalid_argument("regular expression '" + pattern + "' does not compile at offset " +
                                std::to_string(at) + ": " + reinterpret_cast<const char*>(message));
  }
  compiled_->jit = pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() = default;

void Regex::ForEachMatch(std::string_view text, const std::function<void(size_t, size_t)>& on_match) const {
  // One match block per thread, reused: allocating it per call costs more than the match.
  struct MatchData {
    pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
    ~MatchData() { pcre2_match_data_free(data); }
  };
  thread_local MatchData block;
  pcre2_match_data* data = block.data;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t at = 0;
  while (at <= text.size()) {
    const int rc = compiled_->jit ? pcre2_jit_match(compiled_->code, subject, text.size(), at, 0, data, nullptr)
                                  : pcre2_match(compiled_->code, subject, text.size(), at, 0, data, nullptr);
    if (rc < 0) break;  // PCRE2_ERROR_NOMATCH, or a resource limit: no further matches
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data);
    const size_t b = ov[0], e = ov[1];
    if (e == b) {  // an empty match: step over one character
      if (b >= text.size()) break;
      size_t next = b + 1;
      while (next < text.size() && (static_cast<unsigned char>(text[next]) & 0xC0) == 0x80) ++next;
      at = next;
      continue;
    }
    on_match(b, e);
    at = e;
  }
}

#else  // no PCRE2 in this build

struct Regex::Compiled {};

bool HaveRegexEngine() { return false; }

Regex::Regex(const std::string& pattern, bool) {
  throw std::invalid_argument("this sweep-train was built without PCRE2, needed for the pattern '" + pattern +
                              "' (install libpcre2-dev, or carry it with bench/gpu/pack-tokenizer-deps.sh, and rebuild)");
}

Regex::~Regex() = default;

void Regex::ForEachMatch(std::string_view, const std::function<void(size_t, size_t)>&) const {}

#endif

}  // namespace sweepd::data::hf
