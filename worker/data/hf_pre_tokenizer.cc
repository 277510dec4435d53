// Pre-tokenizers of tokenizer.json (see hf_pre_tokenizer.h); the reference is Hugging Face
// tokenizers' pre_tokenizers/{split,byte_level,metaspace,digits,sequence}.rs and the split
// behaviours of tokenizer/normalizer.rs.
#include "worker/data/hf_pre_tokenizer.h"

#include <stdexcept>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "worker/data/hf_normalizer.h"
#include "worker/data/hf_regex.h"

namespace sweepd::data::hf {
namespace {

using json = nlohmann::json;

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Behavior ParseBehavior(const std::string& name) {
  if (name == "Removed") return Behavior::kRemoved;
  if (name == "Isolated") return Behavior::kIsolated;
  if (name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (name == "Contiguous") return Behavior::kContiguous;
  throw std::invalid_argument("pre_tokenizer Split: behavior '" + name +
                              "' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

struct SplitSpan {
  size_t begin, end;
  bool delimiter;
};

// Applies `behavior` to the spans that tile one piece (tokenizers' SplitDelimiterBehavior).
std::vector<SplitSpan> Arrange(std::vector<SplitSpan> spans, Behavior behavior) {
  std::vector<SplitSpan> out;
  bool previous = false;
  switch (behavior) {
    case Behavior::kIsolated:
      return spans;
    case Behavior::kRemoved:
      for (const auto& s : spans) if (!s.delimiter) out.push_back(s);
      return out;
    case Behavior::kMergedWithPrevious:
      for (const auto& s : spans) {
        if (s.delimiter && !previous && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back(s);
        }
        previous = s.delimiter;
      }
      return out;
    case Behavior::kMergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->delimiter && !previous && !out.empty()) {
          out.back().begin = it->begin;
        } else {
          out.push_back(*it);
        }
        previous = it->delimiter;
      }
      return {out.rbegin(), out.rend()};
    case Behavior::kContiguous:
      for (size_t i = 0; i < spans.size(); ++i) {
        if (i > 0 && spans[i].delimiter == previous) {
          out.back().end = spans[i].end;
        } else {
          out.push_back(spans[i]);
        }
        previous = spans[i].delimiter;
      }
      return out;
  }
  return spans;
}

// Splits every piece at the ranges `find` reports ((begin, end) pairs, ascending).
template <typename Find>
void SplitPieces(std::vector<AlignedText>& pieces, Behavior behavior, bool invert, const Find& find) {
  std::vector<AlignedText> out;
  out.reserve(pieces.size());
  std::vector<SplitSpan> spans;
  for (const auto& piece : pieces) {
    spans.clear();
    size_t at = 0;
    find(piece.text, [&](size_t b, size_t e) {
      if (b > at) spans.push_back({at, b, invert});
      spans.push_back({b, e, !invert});
      at = e;
    });
    if (at < piece.text.size()) spans.push_back({at, piece.text.size(), invert});
    if (spans.size() == 1 && !spans[0].delimiter) {
      out.push_back(piece);
      continue;
    }
    for (const auto& s : Arrange(spans, behavior)) {
      if (s.end > s.begin) out.push_back(piece.Slice(s.begin, s.end));
    }
  }
  pieces = std::move(out);
}

class PreTokenizerSequence : public PreTokenizer {
 public:
  explicit PreTokenizerSequence(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void Split(std::vector<AlignedText>& pieces) const override {
    for (const auto& p : parts_) p->Split(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(const std::string& pattern, bool literal, Behavior behavior, bool invert)
      : regex_(pattern, literal), behavior_(behavior), invert_(invert) {}
  void Split(std::vector<AlignedText>& pieces) const override {
    SplitPieces(pieces, behavior_, invert_,
                [&](const std::string& text, const auto& emit) { regex_.ForEachMatch(text, emit); });
  }

 private:
  Regex regex_;
  Behavior behavior_;
  bool invert_;
};

// GPT-2's pre-tokenization pattern (tokenizers' pre_tokenizers/byte_level.rs).
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), regex_(use_regex ? std::make_unique<Regex>(kGpt2Pattern, false) : nullptr) {}
  void Split(std::vector<AlignedText>& pieces) const override {
    if (add_prefix_space_) {
      for (auto& piece : pieces) {
        if (piece.text.empty() || piece.text[0] == ' ') continue;
        AlignedText prefixed;
        prefixed.at_input_start = piece.at_input_start;
        prefixed.AppendRewrite(" ", piece, 0, 0);
        prefixed.AppendCopy(piece, 0, piece.text.size());
        piece = std::move(prefixed);
      }
    }
    if (regex_) {
      SplitPieces(pieces, Behavior::kIsolated, false,
                  [&](const std::string& text, const auto& emit) { regex_->ForEachMatch(text, emit); });
    }
    // The byte-to-character map itself is the model's concern (hf_bpe.h): it looks bytes up
    // in a vocabulary whose keys were mapped back to bytes once.
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  MetaspacePreTokenizer(std::string replacement, Prepend prepend, bool split)
      : replacement_(std::move(replacement)), prepend_(prepend), split_(split) {}
  void Split(std::vector<AlignedText>& pieces) const override {
    for (auto& piece : pieces) {
      AlignedText out;
      out.at_input_start = piece.at_input_start;
      const bool starts = piece.text.compare(0, replacement_.size(), replacement_) == 0 || piece.text[0] == ' ';
      if (!piece.text.empty() && !starts &&
          (prepend_ == Prepend::kAlways || (prepend_ == Prepend::kFirst && piece.at_input_start))) {
        out.AppendRewrite(replacement_, piece, 0, 0);
      }
      size_t copied = 0;
      for (size_t i = piece.text.find(' '); i != std::string::npos; i = piece.text.find(' ', i + 1)) {
        out.AppendCopy(piece, copied, i);
        out.AppendRewrite(replacement_, piece, i, i + 1);
        copied = i + 1;
      }
      out.AppendCopy(piece, copied, piece.text.size());
      piece = std::move(out);
    }
    if (split_) {
      SplitPieces(pieces, Behavior::kMergedWithNext, false, [&](const std::string& text, const auto& emit) {
        for (size_t i = text.find(replacement_); i != std::string::npos; i = text.find(replacement_, i + 1)) {
          emit(i, i + replacement_.size());
        }
      });
    }
  }

 private:
  std::string replacement_;
  Prepend prepend_;
  bool split_;
};

class DigitsPreTokenizer : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
  void Split(std::vector<AlignedText>& pieces) const override {
    SplitPieces(pieces, individual_ ? Behavior::kIsolated : Behavior::kContiguous, false,
                [](const std::string& text, const auto& emit) {
                  for (size_t i = 0; i < text.size(); ++i) {
                    if (text[i] >= '0' && text[i] <= '9') emit(i, i + 1);
                  }
                });
  }

 private:
  bool individual_;
};

MetaspacePreTokenizer::Prepend ParsePrepend(const json& config) {
  if (!config.contains("prepend_scheme")) {
    return config.value("add_prefix_space", true) ? MetaspacePreTokenizer::Prepend::kAlways : MetaspacePreTokenizer::Prepend::kNever;
  }
  const std::string scheme = config.at("prepend_scheme").get<std::string>();
  if (scheme == "always") return MetaspacePreTokenizer::Prepend::kAlways;
  if (scheme == "first") return MetaspacePreTokenizer::Prepend::kFirst;
  if (scheme == "never") return MetaspacePreTokenizer::Prepend::kNever;
  throw std::invalid_argument("pre_tokenizer Metaspace: prepend_scheme '" + scheme +
                              "' is not one of always, first, never");
}

}  // namespace

std::unique_ptr<PreTokenizer> MakePreTokenizer(const json& config) {
  if (config.is_null()) return nullptr;
  if (!config.is_object() || !config.contains("type")) {
    throw std::invalid_argument("pre_tokenizer must be an object with a 'type'");
  }
  const std::string type = config.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const auto& c : config.at("pretokenizers")) {
      if (auto p = MakePreTokenizer(c)) parts.push_back(std::move(p));
    }
    return std::make_unique<PreTokenizerSequence>(std::move(parts));
  }
  if (type == "Split") {
    auto [pattern, literal] = PatternOf(config, "pre_tokenizer Split");
    return std::make_unique<SplitPreTokenizer>(pattern, literal, ParseBehavior(config.value("behavior", "Isolated")),
                                        config.value("invert", false));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(config.value("add_prefix_space", true), config.value("use_regex", true));
  }
  if (type == "Metaspace") {
    return std::make_unique<MetaspacePreTokenizer>(config.value("replacement", "\xe2\x96\x81"), ParsePrepend(config),
                                       config.value("split", true));
  }
  if (type == "Digits") return std::make_unique<DigitsPreTokenizer>(config.value("individual_digits", false));
  throw std::invalid_argument("pre_tokenizer type '" + type +
                              "' is not supported (supported: Sequence, Split, ByteLevel, Metaspace, Digits)");
}

bool IsByteLevel(const json& config) {
  if (!config.is_object()) return false;
  const std::string type = config.value("type", "");
  if (type == "ByteLevel") return true;
  if (type == "Sequence" && config.contains("pretokenizers")) {
    for (const auto& c : config.at("pretokenizers")) {
      if (IsByteLevel(c)) return true;
    }
  }
  return false;
}

}  // namespace sweepd::data::hf
