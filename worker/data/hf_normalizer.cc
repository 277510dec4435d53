// Normalizers of tokenizer.json (see hf_normalizer.h); Hugging Face tokenizers'
// normalizers/{prepend,replace,unicode,strip,utils}.rs are the reference.
#include "worker/data/hf_normalizer.h"

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "worker/data/hf_regex.h"

#ifdef SWEEPD_HAVE_ICU
#include <unicode/bytestream.h>
#include <unicode/casemap.h>
#include <unicode/edits.h>
#include <unicode/normalizer2.h>
#include <unicode/stringoptions.h>
#endif

namespace sweepd::data::hf {
namespace {

using json = nlohmann::json;

class NormalizerSequence : public Normalizer {
 public:
  explicit NormalizerSequence(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void Apply(AlignedText& text) const override {
    for (const auto& p : parts_) p->Apply(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

// Prepends `prepend` to a non-empty text.
class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  void Apply(AlignedText& text) const override {
    if (text.text.empty()) return;
    AlignedText out;
    out.at_input_start = text.at_input_start;
    out.AppendRewrite(prepend_, text, 0, 0);
    out.AppendCopy(text, 0, text.text.size());
    text = std::move(out);
  }

 private:
  std::string prepend_;
};

// Replaces every match of a literal or a regular expression with `content`.
class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(const std::string& pattern, bool literal, std::string content)
      : literal_(literal ? pattern : std::string()), regex_(literal ? nullptr : std::make_unique<Regex>(pattern, false)),
        content_(std::move(content)) {}
  void Apply(AlignedText& text) const override {
    AlignedText out;
    out.at_input_start = text.at_input_start;
    size_t copied = 0;
    auto on_match = [&](size_t b, size_t e) {
      out.AppendCopy(text, copied, b);
      out.AppendRewrite(content_, text, b, e);
      copied = e;
    };
    if (regex_) {
      regex_->ForEachMatch(text.text, on_match);
    } else if (!literal_.empty()) {
      for (size_t at = text.text.find(literal_); at != std::string::npos; at = text.text.find(literal_, at)) {
        on_match(at, at + literal_.size());
        at += literal_.size();
      }
    }
    if (copied == 0) return;
    out.AppendCopy(text, copied, text.text.size());
    text = std::move(out);
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

// Removes leading and/or trailing whitespace.
class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void Apply(AlignedText& text) const override {
    const std::string& s = text.text;
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
    size_t b = 0, e = s.size();
    if (left_) while (b < e && space(s[b])) ++b;
    if (right_) while (e > b && space(s[e - 1])) --e;
    if (b != 0 || e != s.size()) text = text.Slice(b, e);
  }

 private:
  bool left_, right_;
};

#ifdef SWEEPD_HAVE_ICU

// A Unicode normal form (or lower-casing) through ICU, with ICU's edit list mapping every
// changed span of the output back to the input span it replaced.
class IcuForm : public Normalizer {
 public:
  enum Form { kNfc, kNfd, kNfkc, kNfkd, kLower };
  explicit IcuForm(Form form) {
    UErrorCode status = U_ZERO_ERROR;
    switch (form) {
      case kNfc: normalizer_ = icu::Normalizer2::getNFCInstance(status); break;
      case kNfd: normalizer_ = icu::Normalizer2::getNFDInstance(status); break;
      case kNfkc: normalizer_ = icu::Normalizer2::getNFKCInstance(status); break;
      case kNfkd: normalizer_ = icu::Normalizer2::getNFKDInstance(status); break;
      case kLower: break;
    }
    if (U_FAILURE(status)) throw std::invalid_argument(std::string("ICU normalizer unavailable: ") + u_errorName(status));
  }
  void Apply(AlignedText& text) const override {
    UErrorCode status = U_ZERO_ERROR;
    const icu::StringPiece in(text.text.data(), static_cast<int32_t>(text.text.size()));
    if (normalizer_ != nullptr && normalizer_->isNormalizedUTF8(in, status) && U_SUCCESS(status)) return;
    status = U_ZERO_ERROR;
    std::string result;
    icu::StringByteSink<std::string> sink(&result);
    icu::Edits edits;
    if (normalizer_ != nullptr) {
      normalizer_->normalizeUTF8(0, in, sink, &edits, status);
    } else {
      LowerCase(in, sink, edits, status);
    }
    if (U_FAILURE(status)) return;  // ill-formed input: left as it is
    if (!text.tracked()) {
      text.text = std::move(result);
      return;
    }
    AlignedText out;
    out.at_input_start = text.at_input_start;
    for (auto it = edits.getFineIterator(); it.next(status);) {
      const size_t src = static_cast<size_t>(it.sourceIndex()), old_len = static_cast<size_t>(it.oldLength());
      const std::string_view piece(result.data() + it.destinationIndex(), static_cast<size_t>(it.newLength()));
      if (it.hasChange()) {
        out.AppendRewrite(piece, text, src, src + old_len);
      } else {
        out.AppendCopy(text, src, src + old_len);
      }
    }
    text = std::move(out);
  }

 private:
  static void LowerCase(const icu::StringPiece& in, icu::ByteSink& sink, icu::Edits& edits, UErrorCode& status) {
    icu::CaseMap::utf8ToLower("", 0, in, sink, &edits, status);
  }
  const icu::Normalizer2* normalizer_ = nullptr;
};

#endif

std::string NormalizerString(const json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end() || !it->is_string()) {
    throw std::invalid_argument(std::string("normalizer ") + config.value("type", "?") + ": field '" + key +
                                "' must be a string");
  }
  return it->get<std::string>();
}

}  // namespace

// The pattern of a Replace normalizer or decoder: {"String": s} or {"Regex": r}.
std::pair<std::string, bool> PatternOf(const json& config, const std::string& where) {
  const auto it = config.find("pattern");
  if (it != config.end() && it->is_object()) {
    if (it->contains("String") && it->at("String").is_string()) return {it->at("String").get<std::string>(), true};
    if (it->contains("Regex") && it->at("Regex").is_string()) return {it->at("Regex").get<std::string>(), false};
  }
  throw std::invalid_argument(where + ": 'pattern' must be {\"String\": ...} or {\"Regex\": ...}");
}

std::unique_ptr<Normalizer> MakeNormalizer(const json& config) {
  if (config.is_null()) return nullptr;
  if (!config.is_object() || !config.contains("type")) {
    throw std::invalid_argument("normalizer must be an object with a 'type'");
  }
  const std::string type = config.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const auto& c : config.at("normalizers")) {
      if (auto n = MakeNormalizer(c)) parts.push_back(std::move(n));
    }
    return std::make_unique<NormalizerSequence>(std::move(parts));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(NormalizerString(config, "prepend"));
  if (type == "Replace") {
    auto [pattern, literal] = PatternOf(config, "normalizer Replace");
    return std::make_unique<ReplaceNormalizer>(pattern, literal, NormalizerString(config, "content"));
  }
  if (type == "Strip") return std::make_unique<StripNormalizer>(config.value("strip_left", true), config.value("strip_right", true));
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD" || type == "Lowercase") {
#ifdef SWEEPD_HAVE_ICU
    const IcuForm::Form form = type == "NFC"    ? IcuForm::kNfc
                               : type == "NFD"  ? IcuForm::kNfd
                               : type == "NFKC" ? IcuForm::kNfkc
                               : type == "NFKD" ? IcuForm::kNfkd
                                                : IcuForm::kLower;
    return std::make_unique<IcuForm>(form);
#else
    throw std::invalid_argument("normalizer " + type +
                                " needs ICU, and this sweep-train was built without it (install libicu-dev, or carry "
                                "it with bench/gpu/pack-tokenizer-deps.sh, and rebuild)");
#endif
  }
  throw std::invalid_argument("normalizer type '" + type +
                              "' is not supported (supported: Sequence, Prepend, Replace, Strip, NFC, NFD, NFKC, "
                              "NFKD, Lowercase)");
}

}  // namespace sweepd::data::hf
