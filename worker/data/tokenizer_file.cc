// Which tokenizer a model uses, and loading it by its file's kind (see tokenizer.h).
#include <filesystem>
#include <stdexcept>

#include "worker/data/hf_tokenizer.h"
#include "worker/data/tokenizer.h"

namespace sweepd::data {
namespace fs = std::filesystem;

std::string ModelFolderTokenizer(const std::string& folder) {
  for (const char* name : {"tokenizer.json", "tokenizer.model"}) {
    const fs::path candidate = fs::path(folder) / name;
    if (fs::exists(candidate)) return candidate.string();
  }
  throw std::invalid_argument(folder + ": no tokenizer.json or tokenizer.model; add one, or set model.tokenizer");
}

std::unique_ptr<Tokenizer> LoadTokenizerFile(const std::string& path) {
  if (fs::is_directory(path)) return LoadTokenizerFile(ModelFolderTokenizer(path));
  if (!fs::exists(path)) throw std::invalid_argument(path + ": no such tokenizer file");
  if (fs::path(path).extension() == ".json") return HfTokenizer::Load(path);
  return LoadSentencePieceTokenizer(path);
}

}  // namespace sweepd::data
