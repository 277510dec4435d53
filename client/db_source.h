// DbSource: answers sweepctl's read-only questions from a sweepd database file, through the
// store's read-only reader (store/store_reader.h: the same queries sweepd runs, and a
// schema-version check), so results and progress can be read with no coordinator running,
// e.g. on a copy of var/sweepd.db. Commands that change state need a coordinator and are
// refused.
#pragma once

#include <memory>
#include <string>

#include "client/sweep_source.h"
#include "store/store_reader.h"

namespace sweepd::client {

class DbSource : public SweepSource {
 public:
  // Opens `path` read-only; an error says why (no file, not a SQLite or sweepd database,
  // a schema newer than this sweepctl reads).
  static Result<std::unique_ptr<DbSource>> Open(const std::string& path);

  Result<std::vector<SweepInfo>> ListSweeps() override;
  Result<SweepDetail> GetSweep(const std::string& sweep) override;
  Result<std::vector<ResultRecord>> QueryResults(const std::string& sweep) override;
  Result<JobLog> GetJobLog(const std::string& job_id, int64_t after_seq) override;
  Result<std::vector<WorkerInfo>> ListWorkers() override;
  Result<std::vector<store::AuditEntry>> ListAudit(int64_t since_ms) override;
  // Polls the file once a second; sweepd writes it in WAL mode, so new rows appear (this
  // follows the writer, so SQLite may create the -wal and -shm files it needs).
  Status WatchSweep(const std::string& sweep,
                    const std::function<bool(const SweepProgress&)>& on_progress) override;

  Result<SubmitOutcome> Submit(const std::string& spec_yaml, const std::string& spec_path) override;
  Result<int64_t> CancelSweep(const std::string& sweep) override;
  Result<int64_t> RetryJobs(const std::string& sweep, const std::vector<std::string>& job_ids) override;

 private:
  DbSource(std::unique_ptr<store::StoreReader> reader, std::string path)
      : reader_(std::move(reader)), path_(std::move(path)) {}
  Result<SweepInfo> ReadSummary(const std::string& sweep);
  Status ReadOnlyRefusal(const std::string& what) const;

  std::unique_ptr<store::StoreReader> reader_;
  std::string path_;
};

}  // namespace sweepd::client
