// A C interface over Debian's libsentencepiece, built as its own shared object and loaded
// by sweep-train with RTLD_DEEPBIND (worker/data/sentencepiece_tokenizer.cc). The reason:
// libsentencepiece carries a private copy of protobuf 3.14, and LibTorch links the system
// protobuf 3.21; in one global symbol scope one of the two binds to the other's symbols
// and fails its version check or crashes. Behind this seam each keeps its own.
// No LibTorch here: this file builds in a second.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>

namespace {

void CopyMessage(const std::string& message, char* out, size_t out_len) {
  if (out == nullptr || out_len == 0) return;
  const size_t n = std::min(message.size(), out_len - 1);
  std::memcpy(out, message.data(), n);
  out[n] = '\0';
}

}  // namespace

extern "C" {

// Returns a processor, or null with the reason in `error`.
void* sweepd_spm_load(const char* path, char* error, size_t error_len) {
  auto* processor = new sentencepiece::SentencePieceProcessor();
  const auto status = processor->Load(path);
  if (!status.ok()) {
    CopyMessage(status.ToString(), error, error_len);
    delete processor;
    return nullptr;
  }
  return processor;
}

void sweepd_spm_free(void* processor) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(processor);
}

// Encodes `text` into a malloc'ed array the caller frees with free(); 0 on success.
int sweepd_spm_encode(void* processor, const char* text, size_t text_len, int32_t** ids, size_t* n,
                      char* error, size_t error_len) {
  std::vector<int> out;
  const auto status = static_cast<sentencepiece::SentencePieceProcessor*>(processor)->Encode(
      std::string(text, text_len), &out);
  if (!status.ok()) {
    CopyMessage(status.ToString(), error, error_len);
    return 1;
  }
  *n = out.size();
  *ids = static_cast<int32_t*>(std::malloc(std::max<size_t>(1, out.size()) * sizeof(int32_t)));
  for (size_t i = 0; i < out.size(); ++i) (*ids)[i] = out[i];
  return 0;
}

// Like sweepd_spm_encode, with each piece's byte range in `text` in two more malloc'ed
// arrays (`begins`, `ends`) the caller frees.
int sweepd_spm_encode_offsets(void* processor, const char* text, size_t text_len, int32_t** ids,
                              uint32_t** begins, uint32_t** ends, size_t* n, char* error,
                              size_t error_len) {
  sentencepiece::ImmutableSentencePieceText spt;
  const auto status = static_cast<sentencepiece::SentencePieceProcessor*>(processor)->Encode(
      std::string(text, text_len), spt.mutable_proto());
  if (!status.ok()) {
    CopyMessage(status.ToString(), error, error_len);
    return 1;
  }
  const size_t count = spt.pieces_size();
  *n = count;
  const size_t alloc = std::max<size_t>(1, count);
  *ids = static_cast<int32_t*>(std::malloc(alloc * sizeof(int32_t)));
  *begins = static_cast<uint32_t*>(std::malloc(alloc * sizeof(uint32_t)));
  *ends = static_cast<uint32_t*>(std::malloc(alloc * sizeof(uint32_t)));
  for (size_t i = 0; i < count; ++i) {
    const auto piece = spt.pieces(static_cast<int>(i));
    (*ids)[i] = static_cast<int32_t>(piece.id());
    (*begins)[i] = piece.begin();
    (*ends)[i] = piece.end();
  }
  return 0;
}

// Decodes `ids` into a malloc'ed, NUL-terminated string the caller frees; 0 on success.
int sweepd_spm_decode(void* processor, const int32_t* ids, size_t n, char** text, size_t* text_len,
                      char* error, size_t error_len) {
  std::vector<int> in(ids, ids + n);
  std::string out;
  const auto status = static_cast<sentencepiece::SentencePieceProcessor*>(processor)->Decode(in, &out);
  if (!status.ok()) {
    CopyMessage(status.ToString(), error, error_len);
    return 1;
  }
  *text = static_cast<char*>(std::malloc(out.size() + 1));
  std::memcpy(*text, out.data(), out.size());
  (*text)[out.size()] = '\0';
  *text_len = out.size();
  return 0;
}

// Vocabulary size, BOS and EOS ids (-1 when the model has none).
int64_t sweepd_spm_piece_size(void* processor) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(processor)->GetPieceSize();
}
int64_t sweepd_spm_bos_id(void* processor) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(processor)->bos_id();
}
int64_t sweepd_spm_eos_id(void* processor) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(processor)->eos_id();
}

}  // extern "C"
