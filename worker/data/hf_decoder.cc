// Decoders of tokenizer.json (see hf_decoder.h); the reference is Hugging Face tokenizers'
// decoders/{byte_level,byte_fallback,fuse,strip,sequence}.rs, pre_tokenizers/metaspace.rs
// and normalizers/replace.rs.
#include "worker/data/hf_decoder.h"

#include <cctype>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "common/utf8.h"
#include "worker/data/hf_aligned_text.h"
#include "worker/data/hf_bpe.h"
#include "worker/data/hf_normalizer.h"

namespace sweepd::data::hf {
namespace {

using json = nlohmann::json;

constexpr const char* kReplacementChar = "\xef\xbf\xbd";

class DecoderSequence : public Decoder {
 public:
  explicit DecoderSequence(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void Decode(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->Decode(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

// GPT-2's characters back to bytes; a token with a character outside the table stays as it is.
class ByteLevelDecoder : public Decoder {
 public:
  void Decode(std::vector<std::string>& tokens) const override {
    std::string all, bytes;
    for (const auto& t : tokens) {
      if (CharsToBytes(t, bytes)) all += bytes; else all += t;
    }
    tokens.assign(1, Utf8Lossy(all));
  }
};

// Runs of <0xXX> tokens become the text they spell, or one U+FFFD per byte when ill-formed.
class ByteFallbackDecoder : public Decoder {
 public:
  void Decode(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string run;
    size_t run_tokens = 0;
    auto flush = [&] {
      if (run_tokens == 0) return;
      if (Utf8Lossy(run) == run) {
        out.push_back(run);
      } else {
        for (size_t k = 0; k < run_tokens; ++k) out.emplace_back(kReplacementChar);
      }
      run.clear();
      run_tokens = 0;
    };
    for (auto& t : tokens) {
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::isxdigit(static_cast<unsigned char>(t[3])) &&
          std::isxdigit(static_cast<unsigned char>(t[4]))) {
        run.push_back(static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16)));
        ++run_tokens;
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    tokens = std::move(out);
  }
};

class FuseDecoder : public Decoder {
 public:
  void Decode(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, all);
  }
};

// Removes up to `start` leading and `stop` trailing copies of `content` from every token.
class StripDecoder : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop) : content_(std::move(content)), start_(start), stop_(stop) {}
  void Decode(std::vector<std::string>& tokens) const override {
    if (content_.empty()) return;
    for (auto& t : tokens) {
      size_t b = 0, e = t.size();
      for (size_t k = 0; k < start_ && t.compare(b, content_.size(), content_) == 0 && b + content_.size() <= e; ++k) {
        b += content_.size();
      }
      for (size_t k = 0; k < stop_ && e >= b + content_.size() && t.compare(e - content_.size(), content_.size(), content_) == 0; ++k) {
        e -= content_.size();
      }
      t = t.substr(b, e - b);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(std::string pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void Decode(std::vector<std::string>& tokens) const override {
    if (pattern_.empty()) return;
    for (auto& t : tokens) {
      std::string out;
      size_t at = 0;
      for (size_t i = t.find(pattern_); i != std::string::npos; i = t.find(pattern_, at)) {
        out.append(t, at, i - at);
        out += content_;
        at = i + pattern_.size();
      }
      out.append(t, at, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  std::string pattern_, content_;
};

// Every replacement character becomes a space, except in the first token when a prefix
// was prepended (metaspace.rs decode_chain).
class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool prepends) : replacement_(std::move(replacement)), prepends_(prepends) {}
  void Decode(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      std::string out;
      size_t at = 0;
      for (size_t k = t.find(replacement_); k != std::string::npos; k = t.find(replacement_, at)) {
        out.append(t, at, k - at);
        if (!(i == 0 && prepends_)) out.push_back(' ');
        at = k + replacement_.size();
      }
      out.append(t, at, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  std::string replacement_;
  bool prepends_;
};

}  // namespace

std::string Utf8Lossy(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    const size_t n = Utf8SequenceLength(bytes, i);
    if (n == 0) {
      out += kReplacementChar;
      ++i;
      while (i < bytes.size() && !IsUtf8Start(static_cast<unsigned char>(bytes[i])) && Utf8SequenceLength(bytes, i) == 0) ++i;
      continue;
    }
    out.append(bytes, i, n);
    i += n;
  }
  return out;
}

std::unique_ptr<Decoder> MakeDecoder(const json& config) {
  if (config.is_null()) return nullptr;
  if (!config.is_object() || !config.contains("type")) throw std::invalid_argument("decoder must be an object with a 'type'");
  const std::string type = config.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> parts;
    for (const auto& c : config.at("decoders")) {
      if (auto d = MakeDecoder(c)) parts.push_back(std::move(d));
    }
    return std::make_unique<DecoderSequence>(std::move(parts));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(config.value("content", " "), config.value("start", size_t{0}),
                                          config.value("stop", size_t{0}));
  }
  if (type == "Replace") {
    auto [pattern, literal] = PatternOf(config, "decoder Replace");
    if (!literal) throw std::invalid_argument("decoder Replace with a Regex pattern is not supported (only String)");
    return std::make_unique<ReplaceDecoder>(pattern, config.value("content", ""));
  }
  if (type == "Metaspace") {
    const std::string scheme = config.value("prepend_scheme", config.value("add_prefix_space", true) ? "always" : "never");
    return std::make_unique<MetaspaceDecoder>(config.value("replacement", "\xe2\x96\x81"), scheme != "never");
  }
  throw std::invalid_argument("decoder type '" + type +
                              "' is not supported (supported: Sequence, ByteLevel, ByteFallback, Fuse, Strip, "
                              "Replace, Metaspace)");
}

}  // namespace sweepd::data::hf
