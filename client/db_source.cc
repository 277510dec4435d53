// Read-only queries over the sweepd schema; prepared statements only.
#include "client/db_source.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

namespace sweepd::client {
namespace {

// One prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Status status() const {
    if (rc_ == SQLITE_OK) return Status::Ok();
    return Status::Unavailable(std::string("cannot read the database: ") + sqlite3_errmsg(db_) +
                               " (is it a sweepd database, written by a sweepd of this version?)");
  }
  void Bind(int i, const std::string& v) { sqlite3_bind_text(stmt_, i, v.c_str(), -1, SQLITE_TRANSIENT); }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  // True while there is a row; a failure ends the loop and is kept in status().
  bool Step() {
    if (stmt_ == nullptr) return false;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) rc_ = rc;
    return false;
  }
  std::string Text(int i) const {
    const auto* t = sqlite3_column_text(stmt_, i);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  int64_t Int(int i) const { return sqlite3_column_int64(stmt_, i); }
  double Real(int i) const { return sqlite3_column_double(stmt_, i); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

nlohmann::json ParseOrString(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? nlohmann::json(text) : j;
}

}  // namespace

Result<std::unique_ptr<DbSource>> DbSource::Open(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return Status::NotFound("no database file at '" + path +
                            "' (sweepd writes it where its --db points, e.g. var/sweepd.db)");
  }
  sqlite3* db = nullptr;
  // A copied file next to no -wal/-shm, or in a read-only folder, opens only as immutable.
  const std::pair<std::string, int> attempts[] = {
      {path, SQLITE_OPEN_READONLY},
      {"file:" + path + "?immutable=1", SQLITE_OPEN_READONLY | SQLITE_OPEN_URI}};
  for (const auto& [name, flags] : attempts) {
    int rc = sqlite3_open_v2(name.c_str(), &db, flags, nullptr);
    if (rc == SQLITE_OK) {
      sqlite3_busy_timeout(db, 5000);
      auto source = std::unique_ptr<DbSource>(new DbSource(db, path));
      Statement probe(db, "SELECT count(*) FROM sweeps");
      if (probe.status().ok() && probe.Step()) return source;
      source.reset();
      db = nullptr;
      continue;
    }
    sqlite3_close(db);
    db = nullptr;
  }
  return Status::InvalidArgument("'" + path + "' is not a readable sweepd database (no sweeps table)");
}

DbSource::~DbSource() { sqlite3_close(db_); }

Result<SweepInfo> DbSource::ReadSummary(const std::string& sweep) {
  Statement s(db_, "SELECT name, submitted_ms, priority, cancelled FROM sweeps WHERE name = ?");
  SWEEPD_RETURN_IF_ERROR(s.status());
  s.Bind(1, sweep);
  if (!s.Step()) {
    SWEEPD_RETURN_IF_ERROR(s.status());
    return Status::NotFound("no sweep named '" + sweep + "' in " + path_ + " (see `sweepctl list`)");
  }
  SweepInfo info;
  info.name = s.Text(0);
  info.submitted_ms = s.Int(1);
  info.priority = static_cast<int>(s.Int(2));
  info.cancelled = s.Int(3) != 0;
  Statement c(db_,
              "SELECT j.state, count(*) FROM sweep_jobs s JOIN jobs j ON j.job_id = s.job_id "
              "WHERE s.sweep = ? GROUP BY j.state");
  SWEEPD_RETURN_IF_ERROR(c.status());
  c.Bind(1, sweep);
  while (c.Step()) {
    info.counts[c.Text(0)] = c.Int(1);
    info.total_jobs += c.Int(1);
  }
  SWEEPD_RETURN_IF_ERROR(c.status());
  return info;
}

Result<std::vector<SweepInfo>> DbSource::ListSweeps() {
  Statement s(db_, "SELECT name FROM sweeps ORDER BY submitted_ms, name");
  SWEEPD_RETURN_IF_ERROR(s.status());
  std::vector<SweepInfo> out;
  while (s.Step()) {
    auto info = ReadSummary(s.Text(0));
    if (!info.ok()) return info.status();
    out.push_back(std::move(*info));
  }
  SWEEPD_RETURN_IF_ERROR(s.status());
  return out;
}

Result<SweepDetail> DbSource::GetSweep(const std::string& sweep) {
  auto summary = ReadSummary(sweep);
  if (!summary.ok()) return summary.status();
  SweepDetail detail{std::move(*summary), {}};
  Statement s(db_,
              "SELECT j.job_id, j.kind, j.state, j.method, j.track, j.seed, j.trainable_params, "
              "j.attempts, j.last_outcome, j.last_error, j.config_json, j.updated_ms "
              "FROM sweep_jobs s JOIN jobs j ON j.job_id = s.job_id WHERE s.sweep = ? "
              "ORDER BY s.ordinal");
  SWEEPD_RETURN_IF_ERROR(s.status());
  s.Bind(1, sweep);
  while (s.Step()) {
    JobInfo j;
    j.job_id = s.Text(0);
    j.sweep = sweep;
    j.kind = s.Text(1);
    j.state = s.Text(2);
    j.method = s.Text(3);
    j.track = s.Text(4);
    j.seed = s.Int(5);
    j.trainable_params = s.Int(6);
    j.attempts = static_cast<int>(s.Int(7));
    j.last_outcome = s.Text(8);
    j.last_error = s.Text(9);
    j.config_json = s.Text(10);
    j.updated_ms = s.Int(11);
    detail.jobs.push_back(std::move(j));
  }
  SWEEPD_RETURN_IF_ERROR(s.status());
  Statement d(db_,
              "SELECT d.job_id, d.depends_on FROM job_deps d JOIN sweep_jobs s "
              "ON s.job_id = d.job_id WHERE s.sweep = ?");
  SWEEPD_RETURN_IF_ERROR(d.status());
  d.Bind(1, sweep);
  while (d.Step()) {
    for (auto& j : detail.jobs) {
      if (j.job_id == d.Text(0)) j.depends_on.push_back(d.Text(1));
    }
  }
  SWEEPD_RETURN_IF_ERROR(d.status());
  return detail;
}

Result<std::vector<ResultRecord>> DbSource::QueryResults(const std::string& sweep) {
  if (!sweep.empty()) {
    auto summary = ReadSummary(sweep);
    if (!summary.ok()) return summary.status();
  }
  // A job shared by overlapping sweeps is reported once, under its first sweep.
  Statement s(db_,
              "SELECT r.job_id, min(s.sweep), j.config_json, r.result_json, r.finished_ms "
              "FROM results r JOIN jobs j ON j.job_id = r.job_id "
              "JOIN sweep_jobs s ON s.job_id = r.job_id "
              "WHERE (?1 = '' OR s.sweep = ?1) GROUP BY r.job_id "
              "ORDER BY min(s.sweep), min(s.ordinal)");
  SWEEPD_RETURN_IF_ERROR(s.status());
  s.Bind(1, sweep);
  std::vector<ResultRecord> out;
  while (s.Step()) {
    ResultRecord r;
    r.job_id = s.Text(0);
    r.sweep = s.Text(1);
    r.config = ParseOrString(s.Text(2));
    r.result = ParseOrString(s.Text(3));
    r.finished_ms = s.Int(4);
    out.push_back(std::move(r));
  }
  SWEEPD_RETURN_IF_ERROR(s.status());
  return out;
}

Result<JobLog> DbSource::GetJobLog(const std::string& job_id, int64_t after_seq) {
  Statement j(db_, "SELECT state FROM jobs WHERE job_id = ?");
  SWEEPD_RETURN_IF_ERROR(j.status());
  j.Bind(1, job_id);
  if (!j.Step()) {
    SWEEPD_RETURN_IF_ERROR(j.status());
    return Status::NotFound("no job '" + job_id + "' (job ids are listed by `sweepctl status SWEEP`)");
  }
  JobLog log;
  log.state = j.Text(0);
  // The latest attempt is the one a user follows; earlier attempts ended.
  Statement a(db_,
              "SELECT attempt_id, stderr_tail FROM attempts WHERE job_id = ? "
              "ORDER BY number DESC LIMIT 1");
  SWEEPD_RETURN_IF_ERROR(a.status());
  a.Bind(1, job_id);
  if (!a.Step()) {
    SWEEPD_RETURN_IF_ERROR(a.status());
    return log;
  }
  const std::string attempt = a.Text(0);
  log.stderr_tail = a.Text(1);
  Statement p(db_, "SELECT seq, json FROM metric_points WHERE attempt_id = ? AND seq > ? ORDER BY seq");
  SWEEPD_RETURN_IF_ERROR(p.status());
  p.Bind(1, attempt);
  p.Bind(2, after_seq);
  while (p.Step()) log.points.push_back({p.Int(0), p.Text(1)});
  SWEEPD_RETURN_IF_ERROR(p.status());
  return log;
}

Result<std::vector<WorkerInfo>> DbSource::ListWorkers() {
  Statement s(db_,
              "SELECT worker_id, hostname, state, last_heartbeat_ms, slots_json, labels_json "
              "FROM workers ORDER BY hostname, worker_id");
  SWEEPD_RETURN_IF_ERROR(s.status());
  std::vector<WorkerInfo> out;
  while (s.Step()) {
    WorkerInfo w;
    w.worker_id = s.Text(0);
    w.hostname = s.Text(1);
    w.state = s.Text(2);
    w.last_heartbeat_ms = s.Int(3);
    auto slots = ParseOrString(s.Text(4));
    if (slots.is_array()) {
      for (const auto& slot : slots) {
        std::string kind = slot.value("device_kind", "");
        std::string text = kind + ":" + std::to_string(slot.value("index", 0));
        if (!slot.value("device_name", "").empty()) text += " " + slot.value("device_name", "");
        w.slots.push_back(text);
      }
    }
    auto labels = ParseOrString(s.Text(5));
    if (labels.is_object()) {
      for (const auto& [k, v] : labels.items()) w.labels[k] = v.is_string() ? v.get<std::string>() : v.dump();
    }
    out.push_back(std::move(w));
  }
  SWEEPD_RETURN_IF_ERROR(s.status());
  Statement r(db_, "SELECT worker_id, job_id FROM attempts WHERE state IN ('leased', 'running')");
  SWEEPD_RETURN_IF_ERROR(r.status());
  while (r.Step()) {
    for (auto& w : out) {
      if (w.worker_id == r.Text(0)) w.running_jobs.push_back(r.Text(1));
    }
  }
  SWEEPD_RETURN_IF_ERROR(r.status());
  return out;
}

Result<std::vector<RunningMetrics>> DbSource::ReadRunning(const std::string& sweep) {
  Statement s(db_,
              "SELECT a.job_id, a.worker_id, "
              " (SELECT m.json FROM metric_points m WHERE m.attempt_id = a.attempt_id "
              "  AND m.type = 'step' ORDER BY m.seq DESC LIMIT 1) "
              "FROM attempts a JOIN sweep_jobs s ON s.job_id = a.job_id "
              "WHERE s.sweep = ? AND a.state IN ('leased', 'running') ORDER BY a.leased_ms");
  SWEEPD_RETURN_IF_ERROR(s.status());
  s.Bind(1, sweep);
  std::vector<RunningMetrics> out;
  while (s.Step()) {
    RunningMetrics m;
    m.job_id = s.Text(0);
    m.worker = s.Text(1);
    auto step = ParseOrString(s.Text(2));
    if (step.is_object()) {
      m.step = step.value("step", int64_t{0});
      m.total_steps = step.value("total_steps", int64_t{0});
      m.loss = step.value("loss", 0.0);
      m.tokens_per_s = step.value("tokens_per_s", 0.0);
    }
    out.push_back(std::move(m));
  }
  SWEEPD_RETURN_IF_ERROR(s.status());
  return out;
}

Status DbSource::WatchSweep(const std::string& sweep,
                            const std::function<bool(const SweepProgress&)>& on_progress) {
  for (;;) {
    SweepProgress progress;
    auto summary = ReadSummary(sweep);
    if (!summary.ok()) return summary.status();
    progress.summary = std::move(*summary);
    auto running = ReadRunning(sweep);
    if (!running.ok()) return running.status();
    progress.running = std::move(*running);
    progress.finished = progress.summary.Finished();
    if (!on_progress(progress) || progress.finished) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

Status DbSource::ReadOnlyRefusal(const std::string& what) const {
  return Status::FailedPrecondition(what + " needs a running coordinator; --db opens " + path_ +
                                    " read-only. Use --coordinator HOST:PORT (or $SWEEPD_ADDR).");
}

Result<SubmitOutcome> DbSource::Submit(const std::string&, const std::string&) {
  return ReadOnlyRefusal("submit");
}
Result<int64_t> DbSource::CancelSweep(const std::string&) { return ReadOnlyRefusal("cancel"); }
Result<int64_t> DbSource::RetryJobs(const std::string&, const std::vector<std::string>&) {
  return ReadOnlyRefusal("retry");
}

}  // namespace sweepd::client
