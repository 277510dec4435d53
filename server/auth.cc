// The auth file, the roles' permissions and the per-call check (see auth.h).
#include "server/auth.h"

#include <cctype>
#include <sstream>
#include <vector>

#include "common/credentials.h"

namespace sweepd::server {
namespace {

constexpr size_t kMaxAuthFileBytes = 4 << 20;

std::optional<Role> RoleNamed(const std::string& s) {
  if (s == "admin") return Role::kAdmin;
  if (s == "submitter") return Role::kSubmitter;
  if (s == "reader") return Role::kReader;
  if (s == "worker") return Role::kWorker;
  return std::nullopt;
}

bool IsLowerHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

std::string Where(const std::string& path, int line) { return path + ":" + std::to_string(line) + ": "; }

}  // namespace

bool RoleMay(Role role, Permission permission) {
  switch (role) {
    case Role::kAdmin: return true;
    case Role::kSubmitter: return permission == Permission::kRead || permission == Permission::kChange;
    case Role::kReader: return permission == Permission::kRead;
    case Role::kWorker: return permission == Permission::kWork;
  }
  return false;
}

const char* RoleName(Role role) { return credentials::kRoleNames[static_cast<int>(role)]; }

Result<TokenTable> TokenTable::Parse(const std::string& text, const std::string& path) {
  TokenTable table;
  std::istringstream in(text);
  std::string line;
  int number = 0;
  std::map<std::string, int> names;  // name -> first line, so a name is one caller
  while (std::getline(in, line)) {
    ++number;
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::string role, name, digest, extra;
    if (!(fields >> role)) continue;  // blank or comment
    if (!(fields >> name >> digest) || (fields >> extra)) {
      return Status::InvalidArgument(Where(path, number) +
                                     "expected ROLE NAME SHA256HEX; make a line with sweepctl auth new-token");
    }
    const std::optional<Role> r = RoleNamed(role);
    if (!r) {
      return Status::InvalidArgument(Where(path, number) + "role '" + role.substr(0, 32) +
                                     "' is not one of admin, submitter, reader, worker");
    }
    if (!credentials::IsCallerName(name)) {
      return Status::InvalidArgument(Where(path, number) + "name must be 1-" +
                                     std::to_string(credentials::kMaxCallerNameLength) + " of [A-Za-z0-9._-]");
    }
    if (!IsLowerHex64(digest)) {
      return Status::InvalidArgument(Where(path, number) +
                                     "the third field must be the token's SHA-256 as 64 lower-case hex "
                                     "digits (never the token itself)");
    }
    if (auto [it, fresh] = names.emplace(name, number); !fresh) {
      return Status::InvalidArgument(Where(path, number) + "name '" + name + "' is already used on line " +
                                     std::to_string(it->second) + "; one name per token");
    }
    if (!table.callers_.emplace(digest, Caller{name, *r}).second) {
      return Status::InvalidArgument(Where(path, number) + "this token's hash is already on another line");
    }
  }
  return table;
}

Result<TokenTable> TokenTable::Load(const std::string& path) {
  Result<std::string> text = credentials::ReadSmallFile(path, "--auth-file", kMaxAuthFileBytes);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

const Caller* TokenTable::Find(const std::string& token) const {
  auto it = callers_.find(credentials::Sha256Hex(token));
  return it == callers_.end() ? nullptr : &it->second;
}

Result<std::unique_ptr<Authenticator>> Authenticator::Open(const std::string& auth_file) {
  std::unique_ptr<Authenticator> auth(new Authenticator(auth_file));
  if (!auth_file.empty()) SWEEPD_RETURN_IF_ERROR(auth->Reload());
  return Result<std::unique_ptr<Authenticator>>(std::move(auth));
}

Status Authenticator::Reload() {
  if (path_.empty()) return Status::Ok();
  Result<TokenTable> table = TokenTable::Load(path_);
  if (!table.ok()) return table.status();
  auto fresh = std::make_shared<const TokenTable>(std::move(*table));
  std::lock_guard<std::mutex> lock(mu_);
  table_ = std::move(fresh);
  return Status::Ok();
}

std::optional<Caller> Authenticator::Admit(const grpc::ServerContextBase& context, Permission need,
                                           grpc::Status* denied) const {
  std::optional<std::string> certificate_name;  // the client certificate's subject CN
  if (need == Permission::kWork && worker_certificate_required_) {
    const std::shared_ptr<const grpc::AuthContext> peer = context.auth_context();
    if (peer == nullptr || !peer->IsPeerAuthenticated()) {
      *denied = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                             "worker calls need a client certificate signed by sweepd's --tls-client-ca; "
                             "pass sweep-worker --tls-cert and --tls-key");
      return std::nullopt;
    }
    const std::vector<grpc::string_ref> cn = peer->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
    certificate_name = cn.empty() ? std::string() : std::string(cn.front().data(), cn.front().size());
  }
  if (!enabled()) return Caller{"", Role::kAdmin};
  std::shared_ptr<const TokenTable> table;
  {
    std::lock_guard<std::mutex> lock(mu_);
    table = table_;
  }
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find(credentials::kAuthorizationKey);
  const std::string prefix = credentials::kBearerPrefix;
  if (it == metadata.end() || it->second.size() <= prefix.size() ||
      std::string(it->second.data(), prefix.size()) != prefix) {
    *denied = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                           "no token: sweepd needs authorization: Bearer TOKEN; pass --token-file or set "
                           "SWEEPD_TOKEN_FILE");
    return std::nullopt;
  }
  const std::string token(it->second.data() + prefix.size(), it->second.size() - prefix.size());
  const Caller* caller = table->Find(token);
  if (caller == nullptr) {
    *denied = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                           "unknown token: it is not in sweepd's --auth-file; ask the admin for one");
    return std::nullopt;
  }
  if (!RoleMay(caller->role, need)) {
    static constexpr const char* kNeed[] = {"reader", "submitter", "worker", "admin"};
    *denied = grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                           "token '" + caller->name + "' may not make this call (it needs the " +
                               kNeed[static_cast<int>(need)] + (need == Permission::kAudit ? " role)" : " role or admin)"));
    return std::nullopt;
  }
  // Under mutual TLS a worker is its certificate and its token at once: both must name the
  // same node, so a stolen certificate or token alone does not make a worker.
  if (certificate_name && *certificate_name != caller->name) {
    *denied = grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                           "the client certificate's subject CN '" + certificate_name->substr(0, 64) +
                               "' is not the token's name '" + caller->name +
                               "'; give each node a certificate whose CN is its token's name");
    return std::nullopt;
  }
  return *caller;
}

}  // namespace sweepd::server
