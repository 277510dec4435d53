// The audit trail's rows (schema/003_audit.sql): who submitted, cancelled or retried a
// sweep or registered a worker, when, and how it ended. Appended by sweepd's writer, read
// by sweepd (ListAudit) and by `sweepctl --db audit` through StoreReader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/database.h"

namespace sweepd::store {

// The actions the trail records, as stored in its action column.
namespace audit_action {
inline constexpr std::string_view kSubmit = "submit";
inline constexpr std::string_view kCancel = "cancel";
inline constexpr std::string_view kRetry = "retry";
inline constexpr std::string_view kRegister = "register";
}  // namespace audit_action

// Who acted, when no --auth-file names callers.
inline constexpr std::string_view kAnonymousCaller = "-";
// The outcome of a call that succeeded.
inline constexpr std::string_view kAuditOk = "ok";
// Rows one read returns at most (newest last); older ones need an earlier --since window.
inline constexpr size_t kMaxAuditRows = 10000;
// The first schema version that has the audit table.
inline constexpr int64_t kAuditSchemaVersion = 3;

struct AuditEntry {
  int64_t seq = 0;  // set by the store: the order rows were appended in
  int64_t time_ms = 0;
  std::string caller;  // the token's NAME, or kAnonymousCaller
  std::string role;    // admin | submitter | reader | worker, or kAnonymousCaller
  std::string action;  // one of audit_action
  std::string target;  // the sweep's name or the worker's id
  std::string outcome;  // kAuditOk, or "CODE: message"
};

// Appends `entry` (its seq is ignored). Inside the caller's write transaction.
Status AppendAudit(Database& db, const AuditEntry& entry);
// Rows with time_ms >= `since_ms`, oldest first; the newest kMaxAuditRows when more match.
Result<std::vector<AuditEntry>> ReadAudit(Database& db, int64_t since_ms);

}  // namespace sweepd::store
