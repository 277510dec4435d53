// The byte-level tokenizer of the synthetic benchmark: every byte is its own token, so
// the synthetic model needs no tokenizer file and no download.
#include "worker/data/tokenizer.h"

namespace sweepd::data {

std::vector<int64_t> ByteTokenizer::Encode(const std::string& text) const {
  std::vector<int64_t> ids;
  ids.reserve(text.size());
  for (unsigned char c : text) ids.push_back(c);
  return ids;
}

std::vector<TokenOffset> ByteTokenizer::EncodeWithOffsets(const std::string& text) const {
  std::vector<TokenOffset> out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) out.push_back({static_cast<unsigned char>(text[i]), i, i + 1});
  return out;
}

std::string ByteTokenizer::Decode(const std::vector<int64_t>& ids) const {
  std::string text;
  for (int64_t id : ids) {
    if (id >= 0 && id < 256) text.push_back(static_cast<char>(id));
  }
  return text;
}

}  // namespace sweepd::data
