// sweepd's TLS: server credentials from PEM files; with a client CA, client certificates are
// verified when presented (mutual TLS; WorkerService requires one, see auth.h). gRPC's FileWatcherCertificateProvider re-reads the files
// on its own timer, so renewed certificates take effect without a restart or dropped
// connections (no SIGHUP needed).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"

namespace grpc {
class ServerCredentials;
}

namespace sweepd::server {

struct ServerTlsFiles {
  std::string cert_file;       // --tls-cert: sweepd's certificate chain (PEM)
  std::string key_file;        // --tls-key: its private key (PEM)
  std::string client_ca_file;  // --tls-client-ca: CA of the clients' certificates; empty: none asked
};

// How often the certificate files are re-read.
inline constexpr unsigned kTlsRefreshSeconds = 10;

// Plaintext when no file is given; TLS otherwise. Every file is checked to be a readable
// PEM file first, so a wrong path is an error naming the flag, not a failing handshake.
Result<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(const ServerTlsFiles& files);

}  // namespace sweepd::server
