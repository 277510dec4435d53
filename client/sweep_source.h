// SweepSource: where sweepctl reads sweeps and results from and sends commands to. A
// coordinator (RpcSource) answers everything; a database file (DbSource) answers the
// read-only questions, so results can be read on a laptop with no server.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "client/records.h"
#include "common/status.h"
#include "store/audit.h"

namespace sweepd::client {

struct SubmitOutcome {
  bool accepted = false;
  std::vector<std::string> problems;  // "FILE:LINE:COL: field: message"
  std::string sweep;
  int64_t jobs_total = 0;
  int64_t jobs_new = 0;
  int64_t jobs_reused = 0;
};

class SweepSource {
 public:
  virtual ~SweepSource() = default;

  virtual Result<std::vector<SweepInfo>> ListSweeps() = 0;
  virtual Result<SweepDetail> GetSweep(const std::string& sweep) = 0;
  // Results of the train and base_eval jobs of `sweep` (every sweep when empty), grid order.
  virtual Result<std::vector<ResultRecord>> QueryResults(const std::string& sweep) = 0;
  virtual Result<JobLog> GetJobLog(const std::string& job_id, int64_t after_seq) = 0;
  virtual Result<std::vector<WorkerInfo>> ListWorkers() = 0;
  // The audit trail from `since_ms` (Unix ms) on, oldest first (sweepd: admin role).
  virtual Result<std::vector<store::AuditEntry>> ListAudit(int64_t since_ms) = 0;
  // Calls `on_progress` with the sweep's progress until it finishes (or the callback
  // returns false); the first call carries the current state.
  virtual Status WatchSweep(const std::string& sweep,
                            const std::function<bool(const SweepProgress&)>& on_progress) = 0;

  // Commands that change state; a database file opened read-only refuses them.
  virtual Result<SubmitOutcome> Submit(const std::string& spec_yaml, const std::string& spec_path) = 0;
  virtual Result<int64_t> CancelSweep(const std::string& sweep) = 0;
  virtual Result<int64_t> RetryJobs(const std::string& sweep, const std::vector<std::string>& job_ids) = 0;
};

}  // namespace sweepd::client
