// The audit trail's rows and log lines (see audit_trail.h).
#include "server/audit_trail.h"

#include <iterator>

#include <spdlog/spdlog.h>

namespace sweepd::server {
namespace {

// gRPC's status code names (grpc/status.h), for outcomes a person reads.
const char* AuditCodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {
      "OK",           "CANCELLED",         "UNKNOWN",        "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
      "NOT_FOUND",    "ALREADY_EXISTS",    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
      "FAILED_PRECONDITION", "ABORTED",    "OUT_OF_RANGE",   "UNIMPLEMENTED",    "INTERNAL",
      "UNAVAILABLE",  "DATA_LOSS",         "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < static_cast<int>(std::size(kNames)) ? kNames[i] : "UNKNOWN";
}

std::string OutcomeText(const grpc::Status& s) {
  if (s.ok()) return std::string(store::kAuditOk);
  return std::string(AuditCodeName(s.error_code())) + ": " + s.error_message().substr(0, 200);
}

void LogEntry(const store::AuditEntry& e) {
  spdlog::info("audit: {} ({}) {} {}: {}", e.caller, e.role, e.action, e.target.substr(0, 200), e.outcome);
}

}  // namespace

store::AuditEntry AuditTrail::EntryFor(const Caller& caller, std::string_view action,
                                       const std::string& target, const grpc::Status& outcome) const {
  store::AuditEntry e;
  e.time_ms = now_();
  const bool named = auth_enabled_ && !caller.name.empty();
  e.caller = named ? caller.name : std::string(store::kAnonymousCaller);
  e.role = named ? RoleName(caller.role) : std::string(store::kAnonymousCaller);
  e.action = std::string(action);
  e.target = target;
  e.outcome = OutcomeText(outcome);
  return e;
}

void AuditTrail::Record(const Caller& caller, std::string_view action, const std::string& target,
                        const grpc::Status& outcome) {
  store::AuditEntry e = EntryFor(caller, action, target, outcome);
  LogEntry(e);
  if (Status s = store_.RecordAudit(std::move(e)); !s.ok()) {
    spdlog::error("audit: the row was not stored: {}", s.message());
  }
}

void AuditTrail::RecordAsync(const Caller& caller, std::string_view action, const std::string& target,
                             const grpc::Status& outcome) {
  store::AuditEntry e = EntryFor(caller, action, target, outcome);
  LogEntry(e);
  store_.RecordAuditAsync(std::move(e), [](Status s) {
    if (!s.ok()) spdlog::error("audit: the row was not stored: {}", s.message());
  });
}

void AuditTrail::LogRefusal(std::string_view action, const grpc::Status& refusal) {
  spdlog::warn("audit: {} refused: {}", action, OutcomeText(refusal));
}

}  // namespace sweepd::server
