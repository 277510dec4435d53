// AuditTrail: sweepd's record of who submitted, cancelled or retried a sweep or registered a
// worker, when, and how it ended -- one row of the database's audit table (store/audit.h)
// and one line of sweepd's log per call. Only calls whose caller was admitted are recorded
// (refused ones are logged only), so no caller without a token can grow the table.
// Thread-safe: called from gRPC's threads and, for registrations, from the store's writer.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <grpcpp/grpcpp.h>

#include "server/auth.h"
#include "server/store_names.h"

namespace sweepd::server {

class AuditTrail {
 public:
  // `store` must outlive the trail; `now` gives Unix ms. `auth_enabled`: callers have names
  // (else every row is the anonymous "-").
  AuditTrail(Store& store, std::function<int64_t()> now, bool auth_enabled)
      : store_(store), now_(std::move(now)), auth_enabled_(auth_enabled) {}

  // Records a call of `caller` that ended with `outcome`, waiting for the commit (the sync
  // threads of SweepService).
  void Record(const Caller& caller, std::string_view action, const std::string& target,
              const grpc::Status& outcome);
  // The same without waiting: safe on the store's writer thread (a registration's reply).
  void RecordAsync(const Caller& caller, std::string_view action, const std::string& target,
                   const grpc::Status& outcome);
  // A refused call: logged, not stored.
  static void LogRefusal(std::string_view action, const grpc::Status& refusal);

 private:
  store::AuditEntry EntryFor(const Caller& caller, std::string_view action, const std::string& target,
                             const grpc::Status& outcome) const;

  Store& store_;
  const std::function<int64_t()> now_;
  const bool auth_enabled_;
};

}  // namespace sweepd::server
