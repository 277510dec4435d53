// Server TLS credentials (grpc::experimental::TlsServerCredentials over a
// FileWatcherCertificateProvider, gRPC's certificate-provider API).
#include "server/tls.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "common/credentials.h"

namespace sweepd::server {
namespace {

Status CheckPem(const std::string& path, const std::string& flag) {
  Result<std::string> text = credentials::ReadSmallFile(path, flag);
  if (!text.ok()) return text.status();
  if (text->find("-----BEGIN ") == std::string::npos) {
    return Status::InvalidArgument(flag + " " + path + ": not a PEM file (no -----BEGIN line)");
  }
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(const ServerTlsFiles& files) {
  namespace gx = grpc::experimental;
  if (files.cert_file.empty() && files.key_file.empty()) {
    if (!files.client_ca_file.empty()) {
      return Status::InvalidArgument("--tls-client-ca needs --tls-cert and --tls-key");
    }
    return grpc::InsecureServerCredentials();
  }
  if (files.cert_file.empty() || files.key_file.empty()) {
    return Status::InvalidArgument("--tls-cert and --tls-key go together; give both");
  }
  SWEEPD_RETURN_IF_ERROR(CheckPem(files.cert_file, "--tls-cert"));
  SWEEPD_RETURN_IF_ERROR(CheckPem(files.key_file, "--tls-key"));
  if (!files.client_ca_file.empty()) SWEEPD_RETURN_IF_ERROR(CheckPem(files.client_ca_file, "--tls-client-ca"));
  auto provider = std::make_shared<gx::FileWatcherCertificateProvider>(
      files.key_file, files.cert_file, files.client_ca_file, kTlsRefreshSeconds);
  gx::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (files.client_ca_file.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    // Verified when presented; WorkerService then requires one (Authenticator), while
    // researchers' sweepctl may connect with the CA and a token only.
    options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return gx::TlsServerCredentials(options);
}

}  // namespace sweepd::server
