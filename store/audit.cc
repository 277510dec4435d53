// Appending to and reading the audit table (see audit.h).
#include "store/audit.h"

#include <algorithm>

namespace sweepd::store {
namespace {

// Bounded so that one call cannot make a row (or `sweepctl audit`) large: names and ids
// are short already, an outcome quotes at most this much of its message.
constexpr size_t kMaxAuditFieldBytes = 512;

std::string BoundedAuditField(const std::string& s) { return s.size() <= kMaxAuditFieldBytes ? s : s.substr(0, kMaxAuditFieldBytes); }

}  // namespace

Status AppendAudit(Database& db, const AuditEntry& entry) {
  return db
      .Prepare("INSERT INTO audit (time_ms, caller, role, action, target, outcome) "
               "VALUES (?, ?, ?, ?, ?, ?)")
      .Bind(1, entry.time_ms)
      .Bind(2, BoundedAuditField(entry.caller))
      .Bind(3, BoundedAuditField(entry.role))
      .Bind(4, BoundedAuditField(entry.action))
      .Bind(5, BoundedAuditField(entry.target))
      .Bind(6, BoundedAuditField(entry.outcome))
      .Run();
}

Result<std::vector<AuditEntry>> ReadAudit(Database& db, int64_t since_ms) {
  std::vector<AuditEntry> out;
  Query q = db.Prepare(
      "SELECT seq, time_ms, caller, role, action, target, outcome FROM audit "
      "WHERE time_ms >= ? ORDER BY seq DESC LIMIT ?");
  q.Bind(1, since_ms).Bind(2, static_cast<int64_t>(kMaxAuditRows));
  while (q.Step()) {
    out.push_back({q.Int(0), q.Int(1), q.Text(2), q.Text(3), q.Text(4), q.Text(5), q.Text(6)});
  }
  SWEEPD_RETURN_IF_ERROR(q.status());
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace sweepd::store
