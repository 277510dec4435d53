// Client credentials: token files, SHA-256 and random tokens through OpenSSL, and the TLS
// channel credentials (grpc::SslCredentials) for sweepctl and sweep-worker.
#include "common/credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <grpcpp/security/credentials.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace sweepd::credentials {
namespace {

std::string Hex(const unsigned char* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[bytes[i] >> 4];
    out += kDigits[bytes[i] & 0xf];
  }
  return out;
}

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("._~+/=-", c) != nullptr;
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

bool IsCallerName(const std::string& name) {
  if (name.empty() || name.size() > kMaxCallerNameLength) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

Result<std::string> ReadSmallFile(const std::string& path, const std::string& what,
                                  size_t max_bytes) {
  // O_NONBLOCK: a FIFO must not hang the open; fstat then refuses anything not regular.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return Status::NotFound(what + " " + path + ": cannot open (" + std::strerror(errno) +
                            "); check the path and its permissions");
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return Status::InvalidArgument(what + " " + path + ": not a regular file");
  }
  if (static_cast<size_t>(st.st_size) > max_bytes) {
    close(fd);
    return Status::InvalidArgument(what + " " + path + ": larger than " +
                                   std::to_string(max_bytes) + " bytes; is it the right file?");
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  text.resize(got);
  return text;
}

Result<std::string> LoadToken(const std::string& flag_path) {
  std::string path = flag_path;
  std::string what = "--token-file";
  if (path.empty()) {
    const char* env = std::getenv(kTokenFileEnv);
    if (env == nullptr || *env == '\0') return std::string();
    path = env;
    what = std::string("$") + kTokenFileEnv;
  }
  Result<std::string> text = ReadSmallFile(path, what, 4096);
  if (!text.ok()) return text.status();
  std::string token = Trim(*text);
  if (token.empty()) return Status::InvalidArgument(what + " " + path + ": the file is empty");
  for (char c : token) {
    if (!IsTokenChar(c)) {
      // The token itself is never echoed.
      return Status::InvalidArgument(what + " " + path +
                                     ": holds more than one token or characters a token cannot "
                                     "have; make one with sweepctl auth new-token");
    }
  }
  return token;
}

std::string Sha256Hex(const std::string& text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int n = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &n, EVP_sha256(), nullptr);
  return Hex(digest.data(), n);
}

Result<std::string> NewToken() {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return Status::Internal("OpenSSL's random generator failed; try again");
  }
  return Hex(bytes.data(), bytes.size());
}

Result<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(ClientTls tls) {
  if (tls.ca_file.empty()) {
    if (const char* env = std::getenv(kTlsCaEnv); env != nullptr) tls.ca_file = env;
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    return Status::InvalidArgument("--tls-cert and --tls-key go together; give both or neither");
  }
  if (tls.ca_file.empty()) {
    if (!tls.cert_file.empty()) {
      return Status::InvalidArgument("--tls-cert needs --tls-ca (the CA that signed sweepd's certificate)");
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions options;
  Result<std::string> ca = ReadSmallFile(tls.ca_file, "--tls-ca");
  if (!ca.ok()) return ca.status();
  options.pem_root_certs = std::move(*ca);
  if (!tls.cert_file.empty()) {
    Result<std::string> cert = ReadSmallFile(tls.cert_file, "--tls-cert");
    if (!cert.ok()) return cert.status();
    Result<std::string> key = ReadSmallFile(tls.key_file, "--tls-key");
    if (!key.ok()) return key.status();
    options.pem_cert_chain = std::move(*cert);
    options.pem_private_key = std::move(*key);
  }
  return grpc::SslCredentials(options);
}

}  // namespace sweepd::credentials
