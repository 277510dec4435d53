// Who may call what: the auth file's tokens (ROLE NAME SHA256HEX per line), the permissions
// of each role, and the check every RPC makes first. Bearer tokens as in RFC 6750, carried in
// gRPC's "authorization" metadata. Thread-safe: Admit runs on gRPC's threads, Reload on
// main's (SIGHUP); a reload swaps the whole table at once.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/status.h"

namespace sweepd::server {

enum class Role { kAdmin, kSubmitter, kReader, kWorker };

// What a call needs. kRead: list, status, watch, results, logs, workers; kChange: submit,
// cancel, retry; kWork: WorkerService; kAudit: the audit trail (admin only: it names every
// caller and what each did).
enum class Permission { kRead, kChange, kWork, kAudit };

struct Caller {
  std::string name;  // the auth file's NAME; a worker's id is bound to it
  Role role = Role::kReader;
};

bool RoleMay(Role role, Permission permission);
// The role as the auth file spells it.
const char* RoleName(Role role);

// The parsed auth file: SHA-256 hex of a token -> its caller.
class TokenTable {
 public:
  // Every problem names the file and line; nothing is half-loaded.
  static Result<TokenTable> Load(const std::string& path);
  static Result<TokenTable> Parse(const std::string& text, const std::string& path);
  const Caller* Find(const std::string& token) const;
  size_t size() const { return callers_.size(); }

 private:
  std::map<std::string, Caller> callers_;  // by SHA-256 hex
};

class Authenticator {
 public:
  // `auth_file` empty: every call is admitted as an anonymous admin (loopback-only defaults
  // are main's business).
  static Result<std::unique_ptr<Authenticator>> Open(const std::string& auth_file);

  bool enabled() const { return !path_.empty(); }
  // Under mutual TLS: WorkerService calls must come with a client certificate that the
  // handshake verified against --tls-client-ca (SweepService clients may go without), and
  // with auth on, the certificate's subject CN must equal the token's NAME.
  void RequireWorkerCertificate() { worker_certificate_required_ = true; }
  // Re-reads the auth file; on an error the old table stays and the error is returned.
  Status Reload();

  // The caller when the call's token is known and its role may `need`; otherwise
  // UNAUTHENTICATED (no or unknown token, or a worker call without a required client
  // certificate) or PERMISSION_DENIED (role), in `denied`.
  std::optional<Caller> Admit(const grpc::ServerContextBase& context, Permission need,
                              grpc::Status* denied) const;

 private:
  explicit Authenticator(std::string path) : path_(std::move(path)) {}

  std::string path_;
  bool worker_certificate_required_ = false;  // set before serving, read only after
  mutable std::mutex mu_;
  std::shared_ptr<const TokenTable> table_;  // guarded by mu_; swapped whole on reload
};

}  // namespace sweepd::server
