// Adapter folder digests (adapter_digest.h): SHA-256 (OpenSSL) over the folder's canonical
// content. The safetensors header (8-byte little-endian length, then JSON) is read as the
// format's reference describes it (huggingface/safetensors, README "Format").
#include "spec/adapter_digest.h"

#include <openssl/evp.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

namespace sweepd::spec {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct DigestDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// Feeds a length-prefixed field, so that no two sequences of fields hash alike.
// (The length as 8 little-endian bytes, whatever the machine.)
void Add(EVP_MD_CTX* ctx, const std::string& bytes) {
  unsigned char n[8];
  for (int i = 0; i < 8; ++i) n[i] = static_cast<unsigned char>(static_cast<uint64_t>(bytes.size()) >> (8 * i));
  EVP_DigestUpdate(ctx, n, sizeof n);
  EVP_DigestUpdate(ctx, bytes.data(), bytes.size());
}

Result<std::string> ReadText(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument(path + ": cannot read (" + what +
                                   "); adapter.init_from must name an adapter folder readable here");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

Result<std::string> AdapterFolderDigest(const std::string& folder) {
  const std::string config_path = (fs::path(folder) / "adapter_config.json").string();
  const std::string tensors_path = (fs::path(folder) / "adapter_model.safetensors").string();
  Result<std::string> config_text = ReadText(config_path, "an adapter folder holds adapter_config.json");
  if (!config_text.ok()) return config_text.status();
  const json config = json::parse(*config_text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return Status::InvalidArgument(config_path + ": not a JSON object; is this an adapter folder?");
  }
  Result<std::string> file = ReadText(tensors_path, "an adapter folder holds adapter_model.safetensors");
  if (!file.ok()) return file.status();
  const std::string& bytes = *file;
  const auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(tensors_path + ": not a safetensors file (" + why + ")");
  };
  if (bytes.size() < 8) return bad("shorter than its 8-byte header length");
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<unsigned char>(bytes[i]);
  if (header_size > bytes.size() - 8) return bad("header length past the end of the file");
  const json header = json::parse(bytes.substr(8, header_size), nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) return bad("header is not a JSON object");
  const uint64_t data_start = 8 + header_size;

  std::unique_ptr<EVP_MD_CTX, DigestDeleter> ctx(EVP_MD_CTX_new());
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  Add(ctx.get(), config.dump());
  for (const auto& [name, entry] : header.items()) {  // nlohmann::json keeps keys sorted
    if (name == "__metadata__") continue;
    if (!entry.is_object()) return bad("tensor '" + name + "' is not described by an object");
    const json offsets = entry.value("data_offsets", json());
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned()) {
      return bad("tensor '" + name + "' has no data_offsets [begin, end]");
    }
    const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end || end > bytes.size() - data_start) return bad("tensor '" + name + "' lies past the end");
    Add(ctx.get(), name);
    Add(ctx.get(), entry.value("dtype", json()).dump());
    Add(ctx.get(), entry.value("shape", json()).dump());
    Add(ctx.get(), bytes.substr(data_start + begin, end - begin));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  std::string out = "sha256:";
  char hex[3];
  for (unsigned int i = 0; i < length; ++i) {
    std::snprintf(hex, sizeof hex, "%02x", digest[i]);
    out += hex;
  }
  return out;
}

}  // namespace sweepd::spec
