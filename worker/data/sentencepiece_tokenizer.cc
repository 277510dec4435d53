// SentencePiece tokenizers (Llama-2, Mistral): a thin wrapper over Debian's libsentencepiece.
#include <stdexcept>

#include "worker/data/tokenizer.h"

#if defined(SWEEPD_HAVE_SENTENCEPIECE)
#include <sentencepiece_processor.h>
#endif

namespace sweepd::data {

#if defined(SWEEPD_HAVE_SENTENCEPIECE)
namespace {

class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path) {
    const auto status = processor_.Load(path);
    if (!status.ok()) {
      throw std::runtime_error(path + ": cannot load SentencePiece model: " + status.ToString());
    }
  }
  std::vector<int64_t> Encode(const std::string& text) const override {
    std::vector<int> ids;
    const auto status = processor_.Encode(text, &ids);
    if (!status.ok()) throw std::runtime_error("SentencePiece encode failed: " + status.ToString());
    return {ids.begin(), ids.end()};
  }
  std::string Decode(const std::vector<int64_t>& ids) const override {
    std::vector<int> narrow(ids.begin(), ids.end());
    std::string text;
    const auto status = processor_.Decode(narrow, &text);
    if (!status.ok()) throw std::runtime_error("SentencePiece decode failed: " + status.ToString());
    return text;
  }
  int64_t VocabSize() const override { return processor_.GetPieceSize(); }
  int64_t Bos() const override { return processor_.bos_id(); }
  int64_t Eos() const override { return processor_.eos_id(); }

 private:
  sentencepiece::SentencePieceProcessor processor_;
};

}  // namespace

std::unique_ptr<Tokenizer> LoadSentencePieceTokenizer(const std::string& path) {
  return std::make_unique<SentencePieceTokenizer>(path);
}
#else
std::unique_ptr<Tokenizer> LoadSentencePieceTokenizer(const std::string& path) {
  throw std::runtime_error(path + ": this sweep-train was built without SentencePiece; "
                           "install libsentencepiece-dev and rebuild");
}
#endif

}  // namespace sweepd::data
