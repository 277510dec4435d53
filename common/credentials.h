// What a client presents to sweepd: a bearer token read from a file (never from the command
// line, never printed) and the TLS credentials of its channel. Tokens travel as gRPC's
// "authorization: Bearer TOKEN" metadata (RFC 6750); sweepd keeps only their SHA-256.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"

namespace grpc {
class ChannelCredentials;
}

namespace sweepd::credentials {

inline constexpr char kAuthorizationKey[] = "authorization";  // gRPC metadata keys are lower case
inline constexpr char kBearerPrefix[] = "Bearer ";
inline constexpr char kTokenFileEnv[] = "SWEEPD_TOKEN_FILE";
inline constexpr char kTlsCaEnv[] = "SWEEPD_TLS_CA";

// A regular file of at most `max_bytes`, read whole; `what` names the flag in errors.
Result<std::string> ReadSmallFile(const std::string& path, const std::string& what,
                                  size_t max_bytes = 1 << 20);

// The token in `flag_path`, else in $SWEEPD_TOKEN_FILE; "" when neither is set. Surrounding
// whitespace is dropped; a token with other characters than [A-Za-z0-9._~+/=-] is refused.
Result<std::string> LoadToken(const std::string& flag_path);

// The auth file's roles, and the rule for a token's NAME (a worker's id is its name).
inline constexpr const char* kRoleNames[] = {"admin", "submitter", "reader", "worker"};
inline constexpr size_t kMaxCallerNameLength = 128;
bool IsCallerName(const std::string& name);  // 1-128 of [A-Za-z0-9._-]

// Lower-case hex SHA-256 of `text` (OpenSSL EVP).
std::string Sha256Hex(const std::string& text);

// A new random token: 32 bytes from OpenSSL's CSPRNG, hex.
Result<std::string> NewToken();

struct ClientTls {
  std::string ca_file;    // --tls-ca, else $SWEEPD_TLS_CA; empty: plaintext
  std::string cert_file;  // --tls-cert (mutual TLS), with key_file
  std::string key_file;
};

// Plaintext without a CA file, TLS that verifies sweepd against the CA otherwise (and
// presents cert/key when given). Errors name the flag and the file.
Result<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(ClientTls tls);

}  // namespace sweepd::credentials
