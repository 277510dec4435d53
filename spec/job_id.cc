// Job identity: SHA-256 (OpenSSL) of the canonical configuration, so the same
// configuration submitted twice, or by two overlapping sweeps, is the same job.
#include <openssl/evp.h>

#include <cstdio>

#include "spec/sweep_spec.h"

namespace sweepd::spec {

std::string JobIdFor(const JobConfig& config) {
  const std::string canonical = CanonicalJobJson(config);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(canonical.data(), canonical.size(), digest, &length, EVP_sha256(), nullptr);
  std::string id = "j-";
  char hex[3];
  for (int i = 0; i < 8; ++i) {
    std::snprintf(hex, sizeof hex, "%02x", digest[i]);
    id += hex;
  }
  return id;
}

}  // namespace sweepd::spec
