// SentencePiece tokenizers (Llama-2, Mistral) through Debian's libsentencepiece, reached
// through the plugin worker/data/sentencepiece/plugin.cc, which sweep-train loads with
// RTLD_DEEPBIND so that the protobuf copy inside libsentencepiece and the system protobuf
// that LibTorch links never see each other's symbols.
#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "worker/data/tokenizer.h"
#include "worker/failures.h"

namespace sweepd::data {
namespace {

constexpr const char* kPluginName = "libsweepd_sentencepiece.so";

// The plugin's functions, resolved once per process.
struct Plugin {
  void* (*load)(const char*, char*, size_t) = nullptr;
  void (*free_processor)(void*) = nullptr;
  int (*encode)(void*, const char*, size_t, int32_t**, size_t*, char*, size_t) = nullptr;
  int (*encode_offsets)(void*, const char*, size_t, int32_t**, uint32_t**, uint32_t**, size_t*, char*,
                        size_t) = nullptr;
  int (*decode)(void*, const int32_t*, size_t, char**, size_t*, char*, size_t) = nullptr;
  int64_t (*piece_size)(void*) = nullptr;
  int64_t (*bos_id)(void*) = nullptr;
  int64_t (*eos_id)(void*) = nullptr;
};

// $SWEEPD_SENTENCEPIECE_PLUGIN, else the plugin beside the running executable.
std::string PluginPath() {
  if (const char* env = std::getenv("SWEEPD_SENTENCEPIECE_PLUGIN"); env && *env) return env;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return kPluginName;
  return (exe.parent_path() / kPluginName).string();
}

template <typename F>
void Resolve(void* handle, const char* name, F* out, const std::string& path) {
  *out = reinterpret_cast<F>(dlsym(handle, name));
  if (*out == nullptr) throw std::runtime_error(path + ": no symbol " + name);
}

const Plugin& LoadPlugin() {
  static const Plugin* plugin = [] {
    const std::string path = PluginPath();
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (handle == nullptr) {
      const char* why = dlerror();
      throw std::runtime_error(path + ": cannot load the SentencePiece plugin (" + (why ? why : "unknown") +
                               "); build target sweepd_sentencepiece, or set SWEEPD_SENTENCEPIECE_PLUGIN");
    }
    auto p = std::make_unique<Plugin>();
    Resolve(handle, "sweepd_spm_load", &p->load, path);
    Resolve(handle, "sweepd_spm_free", &p->free_processor, path);
    Resolve(handle, "sweepd_spm_encode", &p->encode, path);
    Resolve(handle, "sweepd_spm_encode_offsets", &p->encode_offsets, path);
    Resolve(handle, "sweepd_spm_decode", &p->decode, path);
    Resolve(handle, "sweepd_spm_piece_size", &p->piece_size, path);
    Resolve(handle, "sweepd_spm_bos_id", &p->bos_id, path);
    Resolve(handle, "sweepd_spm_eos_id", &p->eos_id, path);
    return p.release();  // lives as long as the process, like the loaded library
  }();
  return *plugin;
}

class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path) : plugin_(LoadPlugin()) {
    char error[512] = {0};
    processor_ = plugin_.load(path.c_str(), error, sizeof error);
    if (processor_ == nullptr) throw InvalidInput(path + ": cannot load SentencePiece model: " + error);
  }
  ~SentencePieceTokenizer() override { plugin_.free_processor(processor_); }
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  std::vector<int64_t> Encode(const std::string& text) const override {
    int32_t* ids = nullptr;
    size_t n = 0;
    char error[512] = {0};
    if (plugin_.encode(processor_, text.data(), text.size(), &ids, &n, error, sizeof error) != 0) {
      throw std::runtime_error(std::string("SentencePiece encode failed: ") + error);
    }
    std::vector<int64_t> out(ids, ids + n);
    std::free(ids);
    return out;
  }
  std::vector<TokenOffset> EncodeWithOffsets(const std::string& text) const override {
    int32_t* ids = nullptr;
    uint32_t* begins = nullptr;
    uint32_t* ends = nullptr;
    size_t n = 0;
    char error[512] = {0};
    if (plugin_.encode_offsets(processor_, text.data(), text.size(), &ids, &begins, &ends, &n, error,
                               sizeof error) != 0) {
      throw std::runtime_error(std::string("SentencePiece encode failed: ") + error);
    }
    std::vector<TokenOffset> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) out.push_back({ids[i], begins[i], ends[i]});
    std::free(ids);
    std::free(begins);
    std::free(ends);
    MakeOffsetsDisjoint(out, text.size());
    return out;
  }
  std::string Decode(const std::vector<int64_t>& ids) const override {
    std::vector<int32_t> narrow(ids.begin(), ids.end());
    char* text = nullptr;
    size_t n = 0;
    char error[512] = {0};
    if (plugin_.decode(processor_, narrow.data(), narrow.size(), &text, &n, error, sizeof error) != 0) {
      throw std::runtime_error(std::string("SentencePiece decode failed: ") + error);
    }
    std::string out(text, n);
    std::free(text);
    return out;
  }
  int64_t VocabSize() const override { return plugin_.piece_size(processor_); }
  int64_t Bos() const override { return plugin_.bos_id(processor_); }
  int64_t Eos() const override { return plugin_.eos_id(processor_); }

 private:
  const Plugin& plugin_;
  void* processor_ = nullptr;
};

}  // namespace

std::unique_ptr<Tokenizer> LoadSentencePieceTokenizer(const std::string& path) {
  if (!std::filesystem::exists(path)) throw InvalidInput(path + ": no such SentencePiece model file");
  return std::make_unique<SentencePieceTokenizer>(path);
}

}  // namespace sweepd::data
