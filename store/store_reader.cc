// The store's read-only queries; see store_reader.h.
#include "store/store_reader.h"

#include <sys/stat.h>

#include <map>
#include <tuple>

#include "store/migrations.h"
#include "store/row_mapping.h"

namespace sweepd::store {

Result<std::unique_ptr<StoreReader>> StoreReader::Open(const std::string& path,
                                                       std::string_view program,
                                                       bool follow_writers) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::NotFound("no database file at '" + path +
                            "' (sweepd writes it where its --db points, e.g. var/sweepd.db)");
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::Unavailable(path + " is not a file; --db takes the file sweepd writes, "
                               "e.g. var/sweepd.db");
  }
  Result<std::unique_ptr<Database>> db = Database::OpenReadOnly(path, follow_writers);
  if (!db.ok()) return db.status();
  {
    Query q = (*db)->Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                             "'schema_version'");
    const bool found = q.Step();
    SWEEPD_RETURN_IF_ERROR(q.status());
    if (!found) {
      return Status::Unavailable(path + " is a SQLite file but not a sweepd database (it has no "
                                 "schema_version table); --db takes the file sweepd writes");
    }
  }
  Result<int64_t> version = SchemaVersion(**db);
  if (!version.ok()) return version.status();
  const int64_t newest = NewestSchemaVersion();
  if (*version > newest) {
    return Status::Unavailable(path + " has schema version " + std::to_string(*version) +
                               "; this " + std::string(program) + " reads up to " +
                               std::to_string(newest));
  }
  return std::unique_ptr<StoreReader>(new StoreReader(std::move(*db)));
}

Result<std::vector<SweepRecord>> StoreReader::ListSweeps() {
  std::vector<SweepRecord> out;
  {
    Query q = db_.Prepare("SELECT " SWEEPD_SWEEP_COLUMNS " FROM sweeps ORDER BY submitted_ms, name");
    while (q.Step()) out.push_back(ReadSweep(q));
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  for (SweepRecord& s : out) SWEEPD_RETURN_IF_ERROR(LoadCounts(db_, s));
  return out;
}

Result<SweepRecord> StoreReader::GetSweep(const std::string& name) {
  SweepRecord s;
  {
    Query q = db_.Prepare("SELECT " SWEEPD_SWEEP_COLUMNS " FROM sweeps WHERE name = ?");
    q.Bind(1, name);
    if (!q.Step()) {
      SWEEPD_RETURN_IF_ERROR(q.status());
      return Status::NotFound("no sweep '" + name + "'; list sweeps with sweepctl list");
    }
    s = ReadSweep(q);
  }
  SWEEPD_RETURN_IF_ERROR(LoadCounts(db_, s));
  return s;
}

Result<std::vector<JobRecord>> StoreReader::SweepJobs(const std::string& name, int64_t since_ms) {
  SWEEPD_RETURN_IF_ERROR(SweepExists(db_, name));
  std::vector<JobRecord> jobs;
  std::map<std::string, size_t> index;
  {
    Query q = db_.Prepare("SELECT " SWEEPD_JOB_COLUMNS
                          " FROM sweep_jobs sj JOIN jobs j ON j.job_id = sj.job_id "
                          "WHERE sj.sweep = ? AND j.updated_ms > ? ORDER BY sj.ordinal");
    q.Bind(1, name).Bind(2, since_ms);
    while (q.Step()) {
      index[q.Text(0)] = jobs.size();
      jobs.push_back(ReadJob(q));
    }
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  Query q = db_.Prepare(
      "SELECT d.job_id, d.depends_on FROM sweep_jobs sj JOIN job_deps d ON d.job_id = sj.job_id "
      "WHERE sj.sweep = ? ORDER BY d.depends_on");
  q.Bind(1, name);
  while (q.Step()) {
    auto it = index.find(q.Text(0));
    if (it != index.end()) jobs[it->second].depends_on.push_back(q.Text(1));
  }
  SWEEPD_RETURN_IF_ERROR(q.status());
  return jobs;
}

Result<JobRecord> StoreReader::GetJob(const std::string& job_id) { return LoadJob(db_, job_id); }

Result<std::vector<ResultRecord>> StoreReader::QueryResults(const std::string& sweep) {
  if (!sweep.empty()) SWEEPD_RETURN_IF_ERROR(SweepExists(db_, sweep));
  Query q = db_.Prepare(
      "SELECT r.job_id, MIN(sj.sweep), j.config_json, r.result_json, r.finished_ms "
      "FROM results r JOIN jobs j ON j.job_id = r.job_id "
      "JOIN sweep_jobs sj ON sj.job_id = r.job_id "
      "WHERE (?1 = '' OR sj.sweep = ?1) GROUP BY r.job_id "
      "ORDER BY MIN(sj.sweep), MIN(sj.ordinal)");
  q.Bind(1, sweep);
  std::vector<ResultRecord> out;
  while (q.Step()) out.push_back({q.Text(0), q.Text(1), q.Text(2), q.Text(3), q.Int(4)});
  SWEEPD_RETURN_IF_ERROR(q.status());
  return out;
}

Result<JobLog> StoreReader::GetJobLog(const std::string& job_id, int64_t after_seq) {
  Result<JobRecord> job = LoadJob(db_, job_id);
  if (!job.ok()) return job.status();
  JobLog log;
  log.state = job->state;
  std::string attempt_id;
  {
    // The latest attempt is the one a user follows; earlier attempts ended.
    Query q = db_.Prepare(
        "SELECT attempt_id, stderr_tail FROM attempts WHERE job_id = ? ORDER BY number DESC LIMIT "
        "1");
    q.Bind(1, job_id);
    if (q.Step()) attempt_id = q.Text(0), log.stderr_tail = q.Text(1);
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  if (attempt_id.empty()) return log;
  Query q = db_.Prepare(
      "SELECT seq, json FROM metric_points WHERE attempt_id = ? AND seq > ? ORDER BY seq");
  q.Bind(1, attempt_id).Bind(2, after_seq);
  size_t bytes = 0;
  while (q.Step()) {
    std::string json = q.Text(1);
    if (!log.points.empty() && bytes + json.size() > kJobLogPageBytes) {
      log.more = true;
      break;
    }
    bytes += json.size();
    log.points.push_back({q.Int(0), std::move(json)});
  }
  SWEEPD_RETURN_IF_ERROR(q.status());
  return log;
}

Result<std::vector<RunningProgress>> StoreReader::RunningProgressOf(const std::string& sweep) {
  std::vector<std::tuple<std::string, std::string, std::string>> live;  // job, attempt, worker
  {
    Query q = db_.Prepare(
        "SELECT a.job_id, a.attempt_id, a.worker_id FROM sweep_jobs sj JOIN attempts a ON "
        "a.job_id = sj.job_id "
        "WHERE sj.sweep = ? AND a.state IN ('leased', 'running') ORDER BY sj.ordinal");
    q.Bind(1, sweep);
    while (q.Step()) live.emplace_back(q.Text(0), q.Text(1), q.Text(2));
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  std::vector<RunningProgress> out;
  for (const auto& [job, attempt, worker] : live) {
    Query q = db_.Prepare(
        "SELECT json FROM metric_points WHERE attempt_id = ? AND type = 'step' ORDER BY seq DESC "
        "LIMIT 1");
    q.Bind(1, attempt);
    out.push_back({job, worker, q.Step() ? q.Text(0) : ""});
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  return out;
}

Result<std::vector<WorkerRecord>> StoreReader::ListWorkers() {
  std::vector<WorkerRecord> out;
  {
    Query q = db_.Prepare("SELECT " SWEEPD_WORKER_COLUMNS
                          " FROM workers ORDER BY registered_ms, worker_id");
    while (q.Step()) out.push_back(ReadWorker(q));
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  for (WorkerRecord& w : out) {
    Query q = db_.Prepare(
        "SELECT job_id FROM attempts WHERE worker_id = ? AND state IN ('leased', 'running')");
    q.Bind(1, w.worker_id);
    while (q.Step()) w.running_jobs.push_back(q.Text(0));
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  return out;
}

Result<int64_t> StoreReader::QueueDepth(int64_t now_ms) {
  Query q = db_.Prepare("SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND not_before_ms <= ?");
  q.Bind(1, now_ms);
  int64_t n = 0;
  if (q.Step()) n = q.Int(0);
  SWEEPD_RETURN_IF_ERROR(q.status());
  return n;
}

Result<std::string> StoreReader::JobOfAttempt(const std::string& attempt_id) {
  Result<AttemptRow> a = LoadAttempt(db_, attempt_id);
  if (!a.ok()) return a.status();
  return a->job_id;
}

Result<std::string> StoreReader::WorkerOfAttempt(const std::string& attempt_id) {
  Query q = db_.Prepare("SELECT worker_id FROM attempts WHERE attempt_id = ?");
  q.Bind(1, attempt_id);
  std::string worker;
  const bool found = q.Step();
  if (found) worker = q.Text(0);
  SWEEPD_RETURN_IF_ERROR(q.status());
  if (!found) return Status::NotFound("no attempt '" + attempt_id.substr(0, 80) + "'");
  return worker;
}

Result<std::vector<AuditEntry>> StoreReader::Audit(int64_t since_ms) {
  Result<int64_t> version = SchemaVersion(db_);
  if (!version.ok()) return version.status();
  if (*version < kAuditSchemaVersion) {
    return Status::FailedPrecondition(
        "this database has schema version " + std::to_string(*version) +
        ", older than the audit trail (version " + std::to_string(kAuditSchemaVersion) +
        "); sweepd adds the trail the next time it opens the file, and records from then on");
  }
  return ReadAudit(db_, since_ms);
}

}  // namespace sweepd::store
