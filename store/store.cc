// The store: sweepd's tables (schema/*.sql) and every job state transition, each in one
// BEGIN IMMEDIATE transaction. The scheduler and the services ask; only this file decides.
#include "server/store.h"

#include <algorithm>
#include <cctype>
#include <future>
#include <random>
#include <set>
#include <string_view>
#include <tuple>

#include <nlohmann/json.hpp>

#include "server/migrations.h"

namespace sweepd::server {
namespace {

using nlohmann::json;

// Waits for an asynchronous write's reply (the synchronous methods are these waits).
template <typename T>
Result<T> Await(const std::function<void(Reply<T>)>& start) {
  std::promise<Result<T>> done;
  std::future<Result<T>> result = done.get_future();
  start([&done](Result<T> r) { done.set_value(std::move(r)); });
  return result.get();
}

#define SWEEPD_JOB_COLUMNS                                                           \
  "j.job_id, j.kind, j.config_json, j.method, j.track, j.seed, j.trainable_params, " \
  "j.device_kind, j.memory_bytes, j.priority, j.state, j.attempts, j.max_attempts, " \
  "j.not_before_ms, j.last_outcome, j.last_error, j.created_ms, j.updated_ms"

JobRecord ReadJob(const Query& q) {
  JobRecord j;
  j.job_id = q.Text(0);
  j.kind = q.Text(1);
  j.config_json = q.Text(2);
  j.method = q.Text(3);
  j.track = q.Text(4);
  j.seed = q.Int(5);
  j.trainable_params = q.Int(6);
  j.device_kind = q.Text(7);
  j.memory_bytes = q.Int(8);
  j.priority = static_cast<int>(q.Int(9));
  j.state = ParseJobState(q.Text(10)).value_or(JobState::kFailed);
  j.attempts = static_cast<int>(q.Int(11));
  j.max_attempts = static_cast<int>(q.Int(12));
  j.not_before_ms = q.Int(13);
  j.last_outcome = q.Text(14);
  j.last_error = q.Text(15);
  j.created_ms = q.Int(16);
  j.updated_ms = q.Int(17);
  return j;
}

Status LoadDeps(Database& db, JobRecord& job) {
  Query q = db.Prepare("SELECT depends_on FROM job_deps WHERE job_id = ? ORDER BY depends_on");
  q.Bind(1, job.job_id);
  while (q.Step()) job.depends_on.push_back(q.Text(0));
  return q.status();
}

Result<JobRecord> LoadJob(Database& db, const std::string& job_id) {
  Query q = db.Prepare("SELECT " SWEEPD_JOB_COLUMNS " FROM jobs j WHERE j.job_id = ?");
  q.Bind(1, job_id);
  if (!q.Step()) {
    if (!q.status().ok()) return q.status();
    return Status::NotFound("no job '" + job_id + "'; list a sweep's jobs with sweepctl status");
  }
  JobRecord job = ReadJob(q);
  SWEEPD_RETURN_IF_ERROR(LoadDeps(db, job));
  Query sweep = db.Prepare("SELECT MIN(sweep) FROM sweep_jobs WHERE job_id = ?");
  sweep.Bind(1, job_id);
  if (sweep.Step()) job.sweep = sweep.Text(0);
  SWEEPD_RETURN_IF_ERROR(sweep.status());
  return job;
}

Status SetJobState(Database& db, const std::string& job_id, JobState state, int64_t now_ms) {
  return db.Prepare("UPDATE jobs SET state = ?, updated_ms = ? WHERE job_id = ?")
      .Bind(1, std::string(JobStateName(state)))
      .Bind(2, now_ms)
      .Bind(3, job_id)
      .Run();
}

// The state a waiting job should be in given its dependencies: queued when all succeeded,
// failed when one failed for good, else blocked.
Result<JobState> ReadinessOf(Database& db, const std::string& job_id) {
  Query q = db.Prepare(
      "SELECT d.state FROM job_deps jd JOIN jobs d ON d.job_id = jd.depends_on WHERE jd.job_id = "
      "?");
  q.Bind(1, job_id);
  JobState result = JobState::kQueued;
  while (q.Step()) {
    const std::string s = q.Text(0);
    if (s == "failed") return JobState::kFailed;
    if (s != "succeeded") result = JobState::kBlocked;
  }
  SWEEPD_RETURN_IF_ERROR(q.status());
  return result;
}

// Puts a job that is about to wait (new, revived, retried) into queued, blocked or failed.
Status MakeReady(Database& db, const std::string& job_id, int64_t now_ms) {
  Result<JobState> ready = ReadinessOf(db, job_id);
  if (!ready.ok()) return ready.status();
  if (*ready == JobState::kFailed) {
    return db
        .Prepare(
            "UPDATE jobs SET state = 'failed', last_outcome = 'dependency_failed', last_error = "
            "'its base-model evaluation failed; retry the sweep with sweepctl retry', updated_ms = "
            "? "
            "WHERE job_id = ?")
        .Bind(1, now_ms)
        .Bind(2, job_id)
        .Run();
  }
  return db.Prepare("UPDATE jobs SET state = ?, not_before_ms = 0, updated_ms = ? WHERE job_id = ?")
      .Bind(1, std::string(JobStateName(*ready)))
      .Bind(2, now_ms)
      .Bind(3, job_id)
      .Run();
}

// Dependents of `job_id` that wait on it re-check their dependencies (after it succeeded
// or failed for good).
Status SettleDependents(Database& db, const std::string& job_id, int64_t now_ms) {
  std::vector<std::string> waiting;
  {
    Query q = db.Prepare(
        "SELECT j.job_id FROM job_deps jd JOIN jobs j ON j.job_id = jd.job_id "
        "WHERE jd.depends_on = ? AND j.state = 'blocked'");
    q.Bind(1, job_id);
    while (q.Step()) waiting.push_back(q.Text(0));
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  for (const std::string& id : waiting) SWEEPD_RETURN_IF_ERROR(MakeReady(db, id, now_ms));
  return Status::Ok();
}

struct AttemptRow {
  std::string job_id;
  std::string state;
  int64_t fencing_token = 0;
  bool cancel_requested = false;
  int64_t metrics_through = 0;
  std::string outcome;
};

Result<AttemptRow> LoadAttempt(Database& db, const std::string& attempt_id) {
  Query q = db.Prepare(
      "SELECT job_id, state, fencing_token, cancel_requested, metrics_through, outcome "
      "FROM attempts WHERE attempt_id = ?");
  q.Bind(1, attempt_id);
  if (!q.Step()) {
    if (!q.status().ok()) return q.status();
    return Status::NotFound("unknown attempt '" + attempt_id + "'");
  }
  return AttemptRow{q.Text(0), q.Text(1), q.Int(2), q.Int(3) != 0, q.Int(4), q.Text(5)};
}

bool IsLive(const AttemptRow& a) { return a.state == "leased" || a.state == "running"; }

// The attempt, if `token` still holds its lease; FailedPrecondition otherwise (fencing).
Result<AttemptRow> LoadLiveAttempt(Database& db, const std::string& attempt_id, int64_t token) {
  Result<AttemptRow> a = LoadAttempt(db, attempt_id);
  if (!a.ok()) return a;
  if (!IsLive(*a) || a->fencing_token != token) {
    return Status::FailedPrecondition("attempt " + attempt_id +
                                      " no longer holds its lease (expired, finished or replaced); "
                                      "stop it and discard its output");
  }
  return a;
}

bool CountsAsFailure(const std::string& o) {
  return o != outcome::kSucceeded && o != outcome::kCancelled && o != outcome::kHandedBack;
}

std::string ErrorText(const FinishReport& r) {
  std::string text = r.outcome;
  if (r.signal != 0)
    text += " (signal " + std::to_string(r.signal) + ")";
  else if (r.exit_code != 0)
    text += " (exit " + std::to_string(r.exit_code) + ")";
  // The last non-empty line of stderr is usually the trainer's one-line reason.
  std::string tail = r.stderr_tail;
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
  const size_t nl = tail.rfind('\n');
  std::string last = nl == std::string::npos ? tail : tail.substr(nl + 1);
  if (last.size() > 300) last = last.substr(last.size() - 300);
  if (!last.empty()) text += ": " + last;
  return text;
}

// Decides the job's state after an attempt ended with `outcome_name`; the attempt row is
// already updated.
Status SettleJob(Database& db, const std::string& job_id, const std::string& outcome_name,
                 bool cancel_requested, const std::string& error, const BackoffPolicy& backoff,
                 int64_t now_ms) {
  auto finish = [&](JobState state, int64_t not_before) {
    return db
        .Prepare(
            "UPDATE jobs SET state = ?, last_outcome = ?, last_error = ?, not_before_ms = ?, "
            "updated_ms = ? WHERE job_id = ?")
        .Bind(1, std::string(JobStateName(state)))
        .Bind(2, outcome_name)
        .Bind(3, error)
        .Bind(4, not_before)
        .Bind(5, now_ms)
        .Bind(6, job_id)
        .Run();
  };
  if (outcome_name == outcome::kSucceeded) {
    SWEEPD_RETURN_IF_ERROR(finish(JobState::kSucceeded, 0));
    return SettleDependents(db, job_id, now_ms);
  }
  if (cancel_requested) return finish(JobState::kCancelled, 0);
  if (!CountsAsFailure(outcome_name)) return finish(JobState::kQueued, 0);  // handed back
  if (outcome_name == outcome::kInvalidConfig) {
    SWEEPD_RETURN_IF_ERROR(finish(JobState::kFailed, 0));
    return SettleDependents(db, job_id, now_ms);
  }
  int64_t failures = 0, max_attempts = 0;
  {
    Query q = db.Prepare(
        "SELECT (SELECT COUNT(*) FROM attempts a WHERE a.job_id = j.job_id AND a.number > "
        "j.attempts_base "
        "        AND a.outcome NOT IN ('', 'succeeded', 'cancelled', 'handed_back')), "
        "j.max_attempts "
        "FROM jobs j WHERE j.job_id = ?");
    q.Bind(1, job_id);
    if (q.Step()) failures = q.Int(0), max_attempts = q.Int(1);
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  if (failures >= max_attempts) {
    SWEEPD_RETURN_IF_ERROR(finish(JobState::kFailed, 0));
    return SettleDependents(db, job_id, now_ms);
  }
  return finish(JobState::kQueued, now_ms + backoff.DelayAfter(static_cast<int>(failures)));
}

Status LoadCounts(Database& db, SweepRecord& s) {
  Query q = db.Prepare(
      "SELECT j.state, COUNT(*) FROM sweep_jobs sj JOIN jobs j ON j.job_id = sj.job_id "
      "WHERE sj.sweep = ? GROUP BY j.state");
  q.Bind(1, s.name);
  s.total_jobs = 0;
  while (q.Step()) {
    if (auto st = ParseJobState(q.Text(0))) s.counts[*st] = q.Int(1);
    s.total_jobs += q.Int(1);
  }
  return q.status();
}

SweepRecord ReadSweep(const Query& q) {
  SweepRecord s;
  s.name = q.Text(0);
  s.spec_yaml = q.Text(1);
  s.spec_path = q.Text(2);
  s.priority = static_cast<int>(q.Int(3));
  s.cancelled = q.Int(4) != 0;
  s.submitted_ms = q.Int(5);
  return s;
}

Status SweepExists(Database& db, const std::string& name) {
  Query q = db.Prepare("SELECT 1 FROM sweeps WHERE name = ?");
  q.Bind(1, name);
  if (q.Step()) return Status::Ok();
  SWEEPD_RETURN_IF_ERROR(q.status());
  return Status::NotFound("no sweep '" + name + "'; list sweeps with sweepctl list");
}

std::string RandomHex(int n) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < n; ++i) out += digits[rng() % 16];
  return out;
}

}  // namespace

const char* JobStateName(JobState state) {
  switch (state) {
    case JobState::kBlocked:
      return "blocked";
    case JobState::kQueued:
      return "queued";
    case JobState::kLeased:
      return "leased";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "failed";
}

std::optional<JobState> ParseJobState(const std::string& name) {
  for (JobState s : {JobState::kBlocked, JobState::kQueued, JobState::kLeased, JobState::kRunning,
                     JobState::kSucceeded, JobState::kFailed, JobState::kCancelled}) {
    if (name == JobStateName(s)) return s;
  }
  return std::nullopt;
}

bool IsTerminal(JobState s) {
  return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kCancelled;
}

bool SweepRecord::finished() const {
  int64_t terminal = 0;
  for (const auto& [state, n] : counts) {
    if (IsTerminal(state)) terminal += n;
  }
  return terminal == total_jobs;
}

namespace {

// Reads a metric line's top-level "type" (a string) and "step" (an integer) without building
// the JSON value (nlohmann's SAX interface): the store needs only these two of every line.
class MetricLineReader final : public nlohmann::json_sax<json> {
 public:
  bool null() override { return Top(nullptr, nullptr); }
  bool boolean(bool) override { return Top(nullptr, nullptr); }
  bool number_integer(number_integer_t v) override { return Top(nullptr, &v); }
  bool number_unsigned(number_unsigned_t v) override {
    const int64_t step = static_cast<int64_t>(v);
    return Top(nullptr, &step);
  }
  bool number_float(number_float_t, const string_t&) override { return Top(nullptr, nullptr); }
  bool string(string_t& v) override { return Top(&v, nullptr); }
  bool binary(binary_t&) override { return Top(nullptr, nullptr); }
  bool start_object(std::size_t) override {
    if (depth_ == 0) top_is_object_ = true;
    ++depth_;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) key_ = k;
    return true;
  }
  bool end_object() override { return End(); }
  bool start_array(std::size_t) override {
    Top(nullptr, nullptr);
    ++depth_;
    return true;
  }
  bool end_array() override { return End(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

  // What the line said, if it is one JSON object.
  void Into(bool parsed, MetricPointIn& point) const {
    if (!parsed || !top_is_object_) return;
    point.type = type_;
    point.step = step_;
  }

 private:
  // A value at the top level of the object; a later duplicate key wins, as in the DOM.
  bool Top(const std::string* text, const int64_t* integer) {
    if (depth_ != 1) return true;
    if (key_ == "type") type_ = text ? *text : std::string();
    if (key_ == "step") step_ = integer ? std::optional<int64_t>(*integer) : std::nullopt;
    return true;
  }
  bool End() {
    --depth_;
    return true;
  }

  int depth_ = 0;
  bool top_is_object_ = false;
  std::string key_;
  std::string type_;
  std::optional<int64_t> step_;
};

}  // namespace

void ReadMetricLine(MetricPointIn& point) {
  MetricLineReader reader;
  const bool parsed = json::sax_parse(point.json, &reader, json::input_format_t::json, true, false);
  point.read = true;
  point.type.clear();
  point.step.reset();
  reader.Into(parsed, point);
}

int64_t BackoffPolicy::DelayAfter(int failures) const {
  int64_t delay = base_ms;
  for (int i = 1; i < failures && delay < max_ms; ++i) delay *= 2;
  return std::min(delay, max_ms);
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, int64_t now_ms) {
  std::unique_ptr<Store> store(new Store(path));
  Result<std::unique_ptr<Database>> writer = Database::Open(path);
  if (!writer.ok()) return writer.status();
  Database& db = **writer;
  SWEEPD_RETURN_IF_ERROR(ApplyMigrations(db, EmbeddedMigrations(), now_ms));
  // The writer re-reads the pages it just wrote: keep them (64 MiB). Checkpoints run off the
  // writer (CheckpointWal, from housekeeping); its own only once the WAL passes 64 MiB (then
  // little is left to copy), which also lets the WAL start over.
  SWEEPD_RETURN_IF_ERROR(
      db.ExecScript("PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 16384;"));
  SWEEPD_RETURN_IF_ERROR(store->RebuildIndex(db, store->index_));
  Store* self = store.get();
  db.SetRowChangeHook(
      [self](const char* table, int64_t rowid) { self->NoteRowChange(table, rowid); });
  store->writer_ =
      std::make_unique<CommitQueue>(std::move(*writer), static_cast<CommitQueue::Observer*>(self));
  return store;
}

Store::~Store() { writer_.reset(); }

Result<Database*> Store::Connection() {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = connections_[std::this_thread::get_id()];
  if (!slot) {
    Result<std::unique_ptr<Database>> db = Database::Open(path_);
    if (!db.ok()) return db.status();
    slot = std::move(*db);
  }
  return slot.get();
}

template <typename T>
Result<T> Store::Write(const std::function<Result<T>(Database&)>& body) {
  std::optional<T> out;
  Status s = writer_->Run([&](Database& db) -> Status {
    Result<T> r = body(db);
    if (!r.ok()) return r.status();
    out = std::move(*r);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return std::move(*out);
}

Status Store::WriteStatus(const CommitQueue::Work& body) { return writer_->Run(body); }

template <typename T>
void Store::WriteAsync(std::function<Result<T>(Database&)> body, Reply<T> reply) {
  auto out = std::make_shared<std::optional<T>>();
  writer_->Submit(
      [body = std::move(body), out](Database& db) -> Status {
        Result<T> r = body(db);
        if (!r.ok()) return r.status();
        *out = std::move(*r);
        return Status::Ok();
      },
      [out, reply = std::move(reply)](Status s) {
        if (s.ok()) {
          reply(std::move(**out));
        } else {
          reply(std::move(s));
        }
      });
}

// --- The queue index (writer thread) ---

void Store::NoteRowChange(const char* table, int64_t rowid) {
  const std::string_view name(table);
  if (name == "jobs")
    changed_jobs_.push_back(rowid);
  else if (name == "sweeps")
    changed_sweeps_.push_back(rowid);
  else if (name == "sweep_jobs")
    changed_sweep_jobs_.push_back(rowid);
}

namespace {

void SortUnique(std::vector<int64_t>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

IndexedSweep ReadIndexedSweep(const Query& q) {
  return {q.Text(0), q.Int(1), q.Int(2), q.Int(3) != 0};
}

#define SWEEPD_INDEXED_JOB_COLUMNS                                                         \
  "j.rowid, j.job_id, j.state, j.priority, j.created_ms, j.not_before_ms, j.device_kind, " \
  "j.memory_bytes"

IndexedJob ReadIndexedJob(const Query& q) {
  IndexedJob job;
  job.rowid = q.Int(0);
  job.job_id = q.Text(1);
  job.state = q.Text(2);
  job.priority = q.Int(3);
  job.created_ms = q.Int(4);
  job.not_before_ms = q.Int(5);
  job.device_kind = q.Text(6);
  job.memory_bytes = q.Int(7);
  return job;
}

bool IndexedState(const std::string& state) {
  return state == "queued" || state == "leased" || state == "running";
}

}  // namespace

Status Store::RefreshIndex(Database& db) {
  for (int64_t rowid : changed_sweep_jobs_) {
    Query q = db.Prepare(
        "SELECT j.rowid FROM sweep_jobs sj JOIN jobs j ON j.job_id = sj.job_id WHERE sj.rowid = ?");
    q.Bind(1, rowid);
    if (q.Step()) changed_jobs_.push_back(q.Int(0));
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  changed_sweep_jobs_.clear();
  SortUnique(changed_sweeps_);
  for (int64_t rowid : changed_sweeps_) {
    Query q =
        db.Prepare("SELECT name, priority, submitted_ms, cancelled FROM sweeps WHERE rowid = ?");
    q.Bind(1, rowid);
    if (q.Step()) index_.PutSweep(ReadIndexedSweep(q));
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  changed_sweeps_.clear();
  SortUnique(changed_jobs_);
  for (int64_t rowid : changed_jobs_) {
    Query q = db.Prepare("SELECT " SWEEPD_INDEXED_JOB_COLUMNS " FROM jobs j WHERE j.rowid = ?");
    q.Bind(1, rowid);
    if (!q.Step()) {
      SWEEPD_RETURN_IF_ERROR(q.status());
      index_.RemoveJob(rowid);
      continue;
    }
    IndexedJob job = ReadIndexedJob(q);
    if (IndexedState(job.state)) {
      Query sweeps = db.Prepare("SELECT sweep FROM sweep_jobs WHERE job_id = ?");
      sweeps.Bind(1, job.job_id);
      while (sweeps.Step()) job.sweeps.push_back(sweeps.Text(0));
      SWEEPD_RETURN_IF_ERROR(sweeps.status());
    }
    index_.PutJob(std::move(job));
  }
  changed_jobs_.clear();
  return Status::Ok();
}

Status Store::RebuildIndex(Database& db, JobQueueIndex& index) {
  index.Clear();
  {
    Query q = db.Prepare("SELECT name, priority, submitted_ms, cancelled FROM sweeps");
    while (q.Step()) index.PutSweep(ReadIndexedSweep(q));
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  std::map<std::string, std::vector<std::string>> sweeps_of;
  {
    Query q = db.Prepare(
        "SELECT sj.job_id, sj.sweep FROM sweep_jobs sj JOIN jobs j ON j.job_id = sj.job_id "
        "WHERE j.state IN ('queued', 'leased', 'running')");
    while (q.Step()) sweeps_of[q.Text(0)].push_back(q.Text(1));
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  Query q = db.Prepare("SELECT " SWEEPD_INDEXED_JOB_COLUMNS
                       " FROM jobs j WHERE j.state IN ('queued', 'leased', 'running')");
  while (q.Step()) {
    IndexedJob job = ReadIndexedJob(q);
    job.sweeps = sweeps_of[job.job_id];
    index.PutJob(std::move(job));
  }
  return q.status();
}

Result<JobQueueIndex*> Store::Index(Database& db) {
  if (index_stale_) {
    changed_jobs_.clear();
    changed_sweeps_.clear();
    changed_sweep_jobs_.clear();
    SWEEPD_RETURN_IF_ERROR(RebuildIndex(db, index_));
    index_stale_ = false;
  }
  return &index_;
}

void Store::WorkEnded(Database& db) {
  if (!RefreshIndex(db).ok()) index_stale_ = true;  // rebuilt before its next use
}

void Store::BatchEnded(Database&, bool committed) {
  // After a failed COMMIT the rows are back to what they were before the batch.
  if (!committed) index_stale_ = true;
}

Status Store::CheckQueueIndex() {
  return WriteStatus([this](Database& db) -> Status {
    Result<JobQueueIndex*> live = Index(db);
    if (!live.ok()) return live.status();
    JobQueueIndex fresh;
    SWEEPD_RETURN_IF_ERROR(RebuildIndex(db, fresh));
    if ((*live)->Sweeps() != fresh.Sweeps()) return Status::Internal("queue index: sweeps differ");
    const std::vector<IndexedJob> a = (*live)->Jobs(), b = fresh.Jobs();
    for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
      if (i >= a.size() || i >= b.size() || !(a[i] == b[i])) {
        return Status::Internal("queue index: job " + (i < b.size() ? b[i].job_id : a[i].job_id) +
                                " differs from the database");
      }
    }
    return Status::Ok();
  });
}

#define SWEEPD_CONNECT(db)                        \
  Result<Database*> db##_conn = Connection();     \
  if (!db##_conn.ok()) return db##_conn.status(); \
  Database& db = **db##_conn

Result<AddSweepResult> Store::AddSweep(const spec::ExpandedSweep& sweep, int64_t now_ms) {
  return Write<AddSweepResult>([&](Database& db) -> Result<AddSweepResult> {
    AddSweepResult result;
    result.jobs_total = static_cast<int64_t>(sweep.jobs.size());
    {
      Query q = db.Prepare("SELECT spec_yaml FROM sweeps WHERE name = ?");
      q.Bind(1, sweep.name);
      if (q.Step()) {
        if (q.Text(0) != sweep.spec_yaml) {
          return Status::AlreadyExists(
              "a sweep named '" + sweep.name +
              "' exists with a different spec; rename the sweep (name:) to "
              "submit this one");
        }
        result.jobs_reused = result.jobs_total;
        return result;  // the same spec again: nothing to do
      }
      SWEEPD_RETURN_IF_ERROR(q.status());
    }
    SWEEPD_RETURN_IF_ERROR(
        db.Prepare("INSERT INTO sweeps (name, spec_yaml, spec_path, priority, cancelled, "
                   "submitted_ms) VALUES (?, ?, ?, ?, 0, ?)")
            .Bind(1, sweep.name)
            .Bind(2, sweep.spec_yaml)
            .Bind(3, sweep.spec_path)
            .Bind(4, static_cast<int64_t>(sweep.priority))
            .Bind(5, now_ms)
            .Run());
    std::vector<std::string> to_ready;
    int64_t ordinal = 0;
    for (const spec::ExpandedJob& job : sweep.jobs) {
      const JobConfig& c = job.config;
      const std::string method = c.kind == "base_eval" ? "base" : c.adapter.value("method", "");
      SWEEPD_RETURN_IF_ERROR(
          db.Prepare("INSERT OR IGNORE INTO jobs (job_id, kind, config_json, method, track, seed, "
                     "trainable_params, device_kind, memory_bytes, priority, state, attempts, "
                     "max_attempts, "
                     "created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'blocked', 0, "
                     "?, ?, ?)")
              .Bind(1, c.job_id)
              .Bind(2, c.kind)
              .Bind(3, ToJson(c).dump())
              .Bind(4, method)
              .Bind(5, c.track.name)
              .Bind(6, c.seed)
              .Bind(7, job.trainable_params)
              .Bind(8, c.device)
              .Bind(9, job.memory_bytes)
              .Bind(10, static_cast<int64_t>(sweep.priority))
              .Bind(11, static_cast<int64_t>(sweep.max_attempts))
              .Bind(12, now_ms)
              .Bind(13, now_ms)
              .Run());
      if (db.Changes() == 1) {
        ++result.jobs_new;
        to_ready.push_back(c.job_id);
      } else {
        ++result.jobs_reused;
        // A job an earlier sweep cancelled is wanted again; one that is still waiting takes
        // the higher of the two priorities.
        bool cancelled = false;
        {
          Query q = db.Prepare("SELECT state FROM jobs WHERE job_id = ?");
          q.Bind(1, c.job_id);
          cancelled = q.Step() && q.Text(0) == "cancelled";
          SWEEPD_RETURN_IF_ERROR(q.status());
        }
        if (cancelled) {
          to_ready.push_back(c.job_id);
          SWEEPD_RETURN_IF_ERROR(
              db.Prepare("UPDATE jobs SET attempts_base = attempts WHERE job_id = ?")
                  .Bind(1, c.job_id)
                  .Run());
        }
        SWEEPD_RETURN_IF_ERROR(
            db.Prepare("UPDATE jobs SET priority = MAX(priority, ?) WHERE job_id = ? "
                       "AND state IN ('blocked', 'queued', 'cancelled')")
                .Bind(1, static_cast<int64_t>(sweep.priority))
                .Bind(2, c.job_id)
                .Run());
      }
      SWEEPD_RETURN_IF_ERROR(
          db.Prepare("INSERT OR IGNORE INTO sweep_jobs (sweep, job_id, ordinal) VALUES (?, ?, ?)")
              .Bind(1, sweep.name)
              .Bind(2, c.job_id)
              .Bind(3, ordinal++)
              .Run());
      for (const std::string& dep : job.depends_on) {
        SWEEPD_RETURN_IF_ERROR(
            db.Prepare("INSERT OR IGNORE INTO job_deps (job_id, depends_on) VALUES (?, ?)")
                .Bind(1, c.job_id)
                .Bind(2, dep)
                .Run());
      }
    }
    // Dependencies come first in the grid, so each job sees its dependency's final state.
    for (const std::string& id : to_ready) SWEEPD_RETURN_IF_ERROR(MakeReady(db, id, now_ms));
    return result;
  });
}

Result<std::vector<SweepRecord>> Store::ListSweeps() {
  SWEEPD_CONNECT(db);
  std::vector<SweepRecord> out;
  {
    Query q = db.Prepare(
        "SELECT name, spec_yaml, spec_path, priority, cancelled, submitted_ms FROM sweeps "
        "ORDER BY submitted_ms, name");
    while (q.Step()) out.push_back(ReadSweep(q));
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  for (SweepRecord& s : out) SWEEPD_RETURN_IF_ERROR(LoadCounts(db, s));
  return out;
}

Result<SweepRecord> Store::GetSweep(const std::string& name) {
  SWEEPD_CONNECT(db);
  SweepRecord s;
  {
    Query q = db.Prepare(
        "SELECT name, spec_yaml, spec_path, priority, cancelled, submitted_ms FROM sweeps WHERE "
        "name = ?");
    q.Bind(1, name);
    if (!q.Step()) {
      SWEEPD_RETURN_IF_ERROR(q.status());
      return Status::NotFound("no sweep '" + name + "'; list sweeps with sweepctl list");
    }
    s = ReadSweep(q);
  }
  SWEEPD_RETURN_IF_ERROR(LoadCounts(db, s));
  return s;
}

Result<std::vector<JobRecord>> Store::SweepJobs(const std::string& name) {
  return SweepJobsChangedSince(name, -1);
}

Result<std::vector<JobRecord>> Store::SweepJobsChangedSince(const std::string& name,
                                                            int64_t since_ms) {
  SWEEPD_CONNECT(db);
  SWEEPD_RETURN_IF_ERROR(SweepExists(db, name));
  std::vector<JobRecord> jobs;
  std::map<std::string, size_t> index;
  {
    Query q = db.Prepare("SELECT " SWEEPD_JOB_COLUMNS
                         " FROM sweep_jobs sj JOIN jobs j ON j.job_id = sj.job_id "
                         "WHERE sj.sweep = ? AND j.updated_ms > ? ORDER BY sj.ordinal");
    q.Bind(1, name).Bind(2, since_ms);
    while (q.Step()) {
      index[q.Text(0)] = jobs.size();
      jobs.push_back(ReadJob(q));
    }
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  Query q = db.Prepare(
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

Result<JobRecord> Store::GetJob(const std::string& job_id) {
  SWEEPD_CONNECT(db);
  return LoadJob(db, job_id);
}

Result<int64_t> Store::CancelSweep(const std::string& name, int64_t now_ms) {
  return Write<int64_t>([&](Database& db) -> Result<int64_t> {
    SWEEPD_RETURN_IF_ERROR(SweepExists(db, name));
    SWEEPD_RETURN_IF_ERROR(
        db.Prepare("UPDATE sweeps SET cancelled = 1 WHERE name = ?").Bind(1, name).Run());
    // Jobs that another live sweep still includes keep going.
    std::vector<std::pair<std::string, std::string>> jobs;
    {
      Query q = db.Prepare(
          "SELECT j.job_id, j.state FROM sweep_jobs sj JOIN jobs j ON j.job_id = sj.job_id "
          "WHERE sj.sweep = ? AND j.state NOT IN ('succeeded', 'failed', 'cancelled') "
          "AND NOT EXISTS (SELECT 1 FROM sweep_jobs o JOIN sweeps s ON s.name = o.sweep "
          "                WHERE o.job_id = j.job_id AND o.sweep != sj.sweep AND s.cancelled = 0)");
      q.Bind(1, name);
      while (q.Step()) jobs.emplace_back(q.Text(0), q.Text(1));
      SWEEPD_RETURN_IF_ERROR(q.status());
    }
    for (const auto& [job_id, state] : jobs) {
      if (state == "blocked" || state == "queued") {
        SWEEPD_RETURN_IF_ERROR(
            db.Prepare(
                  "UPDATE jobs SET state = 'cancelled', last_outcome = 'cancelled', updated_ms = ? "
                  "WHERE job_id = ?")
                .Bind(1, now_ms)
                .Bind(2, job_id)
                .Run());
      } else {
        SWEEPD_RETURN_IF_ERROR(
            db.Prepare("UPDATE attempts SET cancel_requested = 1 WHERE job_id = ? AND "
                       "state IN ('leased', 'running')")
                .Bind(1, job_id)
                .Run());
      }
    }
    return static_cast<int64_t>(jobs.size());
  });
}

Result<int64_t> Store::RetryJobs(const std::string& name, const std::vector<std::string>& job_ids,
                                 int64_t now_ms) {
  return Write<int64_t>([&](Database& db) -> Result<int64_t> {
    SWEEPD_RETURN_IF_ERROR(SweepExists(db, name));
    const std::set<std::string> wanted(job_ids.begin(), job_ids.end());
    std::vector<std::string> jobs;
    std::set<std::string> in_sweep;
    {
      Query q = db.Prepare(
          "SELECT j.job_id, j.state FROM sweep_jobs sj JOIN jobs j ON j.job_id = sj.job_id "
          "WHERE sj.sweep = ? ORDER BY sj.ordinal");
      q.Bind(1, name);
      while (q.Step()) {
        const std::string id = q.Text(0);
        in_sweep.insert(id);
        const std::string state = q.Text(1);
        if ((state == "failed" || state == "cancelled") && (wanted.empty() || wanted.count(id))) {
          jobs.push_back(id);
        }
      }
      SWEEPD_RETURN_IF_ERROR(q.status());
    }
    for (const std::string& id : wanted) {
      if (!in_sweep.count(id))
        return Status::NotFound("job '" + id + "' is not part of sweep '" + name + "'");
    }
    SWEEPD_RETURN_IF_ERROR(
        db.Prepare("UPDATE sweeps SET cancelled = 0 WHERE name = ?").Bind(1, name).Run());
    for (const std::string& id : jobs) {
      SWEEPD_RETURN_IF_ERROR(
          db.Prepare("UPDATE jobs SET attempts_base = attempts, state = 'blocked' WHERE job_id = ?")
              .Bind(1, id)
              .Run());
    }
    // In grid order, so a retried base evaluation is waiting before its dependents look at it.
    for (const std::string& id : jobs) SWEEPD_RETURN_IF_ERROR(MakeReady(db, id, now_ms));
    return static_cast<int64_t>(jobs.size());
  });
}

Result<std::vector<ResultRecord>> Store::QueryResults(const std::string& sweep) {
  SWEEPD_CONNECT(db);
  SWEEPD_RETURN_IF_ERROR(SweepExists(db, sweep));
  Query q = db.Prepare(
      "SELECT r.job_id, j.config_json, r.result_json, r.finished_ms FROM sweep_jobs sj "
      "JOIN results r ON r.job_id = sj.job_id JOIN jobs j ON j.job_id = sj.job_id "
      "WHERE sj.sweep = ? ORDER BY sj.ordinal");
  q.Bind(1, sweep);
  std::vector<ResultRecord> out;
  while (q.Step()) out.push_back({q.Text(0), sweep, q.Text(1), q.Text(2), q.Int(3)});
  SWEEPD_RETURN_IF_ERROR(q.status());
  return out;
}

Result<JobLog> Store::GetJobLog(const std::string& job_id, int64_t after_seq) {
  SWEEPD_CONNECT(db);
  Result<JobRecord> job = LoadJob(db, job_id);
  if (!job.ok()) return job.status();
  JobLog log;
  log.state = job->state;
  std::string attempt_id;
  {
    Query q = db.Prepare(
        "SELECT attempt_id, stderr_tail FROM attempts WHERE job_id = ? ORDER BY number DESC LIMIT "
        "1");
    q.Bind(1, job_id);
    if (q.Step()) attempt_id = q.Text(0), log.stderr_tail = q.Text(1);
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  if (attempt_id.empty()) return log;
  Query q = db.Prepare(
      "SELECT seq, json FROM metric_points WHERE attempt_id = ? AND seq > ? ORDER BY seq");
  q.Bind(1, attempt_id).Bind(2, after_seq);
  while (q.Step()) log.points.push_back({q.Int(0), q.Text(1)});
  SWEEPD_RETURN_IF_ERROR(q.status());
  return log;
}

Result<std::vector<RunningProgress>> Store::RunningProgressOf(const std::string& sweep) {
  SWEEPD_CONNECT(db);
  std::vector<std::tuple<std::string, std::string, std::string>> live;  // job, attempt, worker
  {
    Query q = db.Prepare(
        "SELECT a.job_id, a.attempt_id, a.worker_id FROM sweep_jobs sj JOIN attempts a ON a.job_id "
        "= sj.job_id "
        "WHERE sj.sweep = ? AND a.state IN ('leased', 'running') ORDER BY sj.ordinal");
    q.Bind(1, sweep);
    while (q.Step()) live.emplace_back(q.Text(0), q.Text(1), q.Text(2));
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  std::vector<RunningProgress> out;
  for (const auto& [job, attempt, worker] : live) {
    Query q = db.Prepare(
        "SELECT json FROM metric_points WHERE attempt_id = ? AND type = 'step' ORDER BY seq DESC "
        "LIMIT 1");
    q.Bind(1, attempt);
    out.push_back({job, worker, q.Step() ? q.Text(0) : ""});
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  return out;
}

Result<std::string> Store::RegisterWorker(const WorkerRecord& w, int64_t now_ms) {
  return Await<std::string>(
      [&](Reply<std::string> reply) { RegisterWorkerAsync(w, now_ms, std::move(reply)); });
}

void Store::RegisterWorkerAsync(WorkerRecord w, int64_t now_ms, Reply<std::string> reply) {
  WriteAsync<std::string>(
      [this, w = std::move(w), now_ms](Database& db) -> Result<std::string> {
        std::string id = w.worker_id;
        if (id.empty()) {
          std::string host;
          for (char c : w.hostname)
            host += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '-';
          id = "w-" + (host.empty() ? std::string("host") : host) + "-" + RandomHex(8);
        }
        json slots = json::array();
        for (const SlotInfo& s : w.slots) {
          slots.push_back({{"index", s.index},
                           {"device_kind", s.device_kind},
                           {"device_name", s.device_name},
                           {"memory_bytes", s.memory_bytes},
                           {"compute_capability", s.compute_capability}});
        }
        SWEEPD_RETURN_IF_ERROR(
            db.Prepare("INSERT INTO workers (worker_id, hostname, version, slots_json, "
                       "labels_json, state, "
                       "registered_ms, last_heartbeat_ms) VALUES (?, ?, ?, ?, ?, 'alive', ?, ?) "
                       "ON CONFLICT (worker_id) DO UPDATE SET hostname = excluded.hostname, "
                       "version = excluded.version, slots_json = excluded.slots_json, "
                       "labels_json = excluded.labels_json, state = 'alive', "
                       "last_heartbeat_ms = excluded.last_heartbeat_ms")
                .Bind(1, id)
                .Bind(2, w.hostname)
                .Bind(3, w.version)
                .Bind(4, slots.dump())
                .Bind(5, json(w.labels).dump())
                .Bind(6, now_ms)
                .Bind(7, now_ms)
                .Run());
        return id;
      },
      std::move(reply));
}

Result<HeartbeatResult> Store::Heartbeat(const HeartbeatReport& report, int64_t now_ms,
                                         int64_t lease_ms) {
  return Await<HeartbeatResult>([&](Reply<HeartbeatResult> reply) {
    HeartbeatAsync(report, now_ms, lease_ms, std::move(reply));
  });
}

void Store::HeartbeatAsync(HeartbeatReport report, int64_t now_ms, int64_t lease_ms,
                           Reply<HeartbeatResult> reply) {
  WriteAsync<HeartbeatResult>(
      [this, report = std::move(report), now_ms,
       lease_ms](Database& db) -> Result<HeartbeatResult> {
        HeartbeatResult result;
        result.lease_expires_ms = now_ms + lease_ms;
        SWEEPD_RETURN_IF_ERROR(
            db.Prepare("UPDATE workers SET last_heartbeat_ms = ?, state = ? WHERE worker_id = ?")
                .Bind(1, now_ms)
                .Bind(2, std::string(report.draining ? "draining" : "alive"))
                .Bind(3, report.worker_id)
                .Run());
        if (db.Changes() == 0) {
          result.known_worker = false;
          for (const auto& [attempt, _] : report.running) result.lost_attempts.push_back(attempt);
          return result;
        }
        for (const auto& [attempt_id, token] : report.running) {
          Result<AttemptRow> a = LoadLiveAttempt(db, attempt_id, token);
          if (!a.ok()) {
            if (a.status().code() == StatusCode::kNotFound ||
                a.status().code() == StatusCode::kFailedPrecondition) {
              result.lost_attempts.push_back(attempt_id);
              continue;
            }
            return a.status();
          }
          SWEEPD_RETURN_IF_ERROR(
              db.Prepare("UPDATE attempts SET lease_expires_ms = ? WHERE attempt_id = ?")
                  .Bind(1, result.lease_expires_ms)
                  .Bind(2, attempt_id)
                  .Run());
          if (a->cancel_requested) result.cancel_attempts.push_back(attempt_id);
        }
        return result;
      },
      std::move(reply));
}

Result<std::optional<Lease>> Store::LeaseJob(const LeaseRequest& r, int64_t now_ms,
                                             int64_t lease_ms) {
  Result<LeaseOutcome> out = Await<LeaseOutcome>(
      [&](Reply<LeaseOutcome> reply) { LeaseJobAsync(r, now_ms, lease_ms, std::move(reply)); });
  if (!out.ok()) return out.status();
  return std::move(out->lease);
}

void Store::LeaseJobAsync(LeaseRequest r, int64_t now_ms, int64_t lease_ms,
                          Reply<LeaseOutcome> reply) {
  WriteAsync<LeaseOutcome>(
      [this, r = std::move(r), now_ms, lease_ms](Database& db) -> Result<LeaseOutcome> {
        Result<std::optional<Lease>> lease = LeaseIn(db, r, now_ms, lease_ms);
        if (!lease.ok()) return lease.status();
        LeaseOutcome out;
        out.lease = std::move(*lease);
        if (!out.lease) {
          // Read in the same work: the index is the writer's.
          Result<JobQueueIndex*> index = Index(db);
          if (!index.ok()) return index.status();
          out.next_eligible_ms =
              (*index)->NextEligibleMs(r.device_kind, r.free_memory_bytes, now_ms);
        }
        return out;
      },
      std::move(reply));
}

Result<std::optional<Lease>> Store::LeaseIn(Database& db, const LeaseRequest& r, int64_t now_ms,
                                            int64_t lease_ms) {
  {
    Query q = db.Prepare("SELECT state FROM workers WHERE worker_id = ?");
    q.Bind(1, r.worker_id);
    if (!q.Step()) {
      SWEEPD_RETURN_IF_ERROR(q.status());
      return Status::NotFound("unknown worker '" + r.worker_id + "'; register again");
    }
    if (q.Text(0) == "draining") return std::optional<Lease>();
  }
  SWEEPD_RETURN_IF_ERROR(
      db.Prepare("UPDATE workers SET last_heartbeat_ms = ?, state = 'alive' WHERE worker_id = ?")
          .Bind(1, now_ms)
          .Bind(2, r.worker_id)
          .Run());
  // The index follows every committed and in-batch change of jobs and sweeps, so its
  // pick is what the rows say (docs/coordinator.md, "Leasing").
  Result<JobQueueIndex*> index = Index(db);
  if (!index.ok()) return index.status();
  const std::optional<int64_t> picked = (*index)->Pick(r.device_kind, r.free_memory_bytes, now_ms);
  if (!picked) return std::optional<Lease>();
  const std::string job_id = (*index)->Find(*picked)->job_id;
  Result<JobRecord> job = LoadJob(db, job_id);
  if (!job.ok()) return job.status();
  Lease lease;
  lease.queued_since_ms = std::max(job->updated_ms, job->not_before_ms);
  lease.attempt_number = job->attempts + 1;
  lease.attempt_id = job_id + ".a" + std::to_string(lease.attempt_number);
  lease.expires_ms = now_ms + lease_ms;
  {
    Query q = db.Prepare("SELECT COALESCE(MAX(fencing_token), 0) + 1 FROM attempts");
    if (q.Step()) lease.fencing_token = q.Int(0);
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  SWEEPD_RETURN_IF_ERROR(
      db.Prepare("INSERT INTO attempts (attempt_id, job_id, number, worker_id, slot_index, "
                 "fencing_token, "
                 "state, leased_ms, lease_expires_ms) VALUES (?, ?, ?, ?, ?, ?, 'leased', ?, ?)")
          .Bind(1, lease.attempt_id)
          .Bind(2, job_id)
          .Bind(3, static_cast<int64_t>(lease.attempt_number))
          .Bind(4, r.worker_id)
          .Bind(5, static_cast<int64_t>(r.slot_index))
          .Bind(6, lease.fencing_token)
          .Bind(7, now_ms)
          .Bind(8, lease.expires_ms)
          .Run());
  SWEEPD_RETURN_IF_ERROR(
      db.Prepare("UPDATE jobs SET state = 'leased', attempts = ?, updated_ms = ? WHERE job_id = ?")
          .Bind(1, static_cast<int64_t>(lease.attempt_number))
          .Bind(2, now_ms)
          .Bind(3, job_id)
          .Run());
  // The base model's scores, from the job's base_eval dependency, travel with the job.
  json config = json::parse(job->config_json, nullptr, false);
  if (config.is_object() && config.value("base_eval_job", "") != "") {
    Query q = db.Prepare("SELECT result_json FROM results WHERE job_id = ?");
    q.Bind(1, config["base_eval_job"].get<std::string>());
    if (q.Step()) {
      json result = json::parse(q.Text(0), nullptr, false);
      if (result.is_object() && result.contains("scores") && result["scores"].is_object()) {
        config["base_scores"] = result["scores"];
        if (result.contains("base_fingerprint") && result["base_fingerprint"].is_string()) {
          config["base_fingerprint"] = result["base_fingerprint"];
        }
      }
    }
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  if (config.is_object()) job->config_json = config.dump();
  job->state = JobState::kLeased;
  job->attempts = lease.attempt_number;
  job->updated_ms = now_ms;
  lease.job = std::move(*job);
  return std::optional<Lease>(std::move(lease));
}

Status Store::MarkStarted(const std::string& attempt_id, int64_t token, int64_t now_ms) {
  std::promise<Status> done;
  std::future<Status> result = done.get_future();
  MarkStartedAsync(attempt_id, token, now_ms, [&done](Status s) { done.set_value(std::move(s)); });
  return result.get();
}

void Store::MarkStartedAsync(std::string attempt_id, int64_t token, int64_t now_ms,
                             StatusReply reply) {
  writer_->Submit(
      [this, attempt_id = std::move(attempt_id), token, now_ms](Database& db) -> Status {
        Result<AttemptRow> a = LoadLiveAttempt(db, attempt_id, token);
        if (!a.ok()) return a.status();
        if (a->state == "leased") {
          SWEEPD_RETURN_IF_ERROR(
              db.Prepare(
                    "UPDATE attempts SET state = 'running', started_ms = ? WHERE attempt_id = ?")
                  .Bind(1, now_ms)
                  .Bind(2, attempt_id)
                  .Run());
          SWEEPD_RETURN_IF_ERROR(SetJobState(db, a->job_id, JobState::kRunning, now_ms));
        }
        return Status::Ok();
      },
      std::move(reply));
}

Result<MetricsStored> Store::StoreMetrics(const std::string& attempt_id, int64_t token,
                                          const std::vector<MetricPointIn>& points,
                                          int64_t now_ms) {
  return Await<MetricsStored>([&](Reply<MetricsStored> reply) {
    StoreMetricsAsync(attempt_id, token, points, now_ms, std::move(reply));
  });
}

namespace {

// Inserting many points per statement saves SQLite's per-statement work (the text is fixed:
// sixteen row placeholders).
#define SWEEPD_METRIC_INSERT                                                                    \
  "INSERT OR IGNORE INTO metric_points (attempt_id, seq, job_id, type, step, json, stored_ms) " \
  "VALUES "
#define SWEEPD_METRIC_ROW "(?, ?, ?, ?, ?, ?, ?)"
#define SWEEPD_METRIC_ROWS4 \
  SWEEPD_METRIC_ROW ", " SWEEPD_METRIC_ROW ", " SWEEPD_METRIC_ROW ", " SWEEPD_METRIC_ROW
constexpr size_t kMetricRowsPerInsert = 16;
constexpr const char* kInsertMetricRow = SWEEPD_METRIC_INSERT SWEEPD_METRIC_ROW;
constexpr const char* kInsertMetricRows = SWEEPD_METRIC_INSERT SWEEPD_METRIC_ROWS4
    ", " SWEEPD_METRIC_ROWS4 ", " SWEEPD_METRIC_ROWS4 ", " SWEEPD_METRIC_ROWS4;

}  // namespace

void Store::StoreMetricsAsync(std::string attempt_id, int64_t token,
                              std::vector<MetricPointIn> points, int64_t now_ms,
                              Reply<MetricsStored> reply) {
  // The lines are read here, on the caller's thread, so the writer only inserts.
  for (MetricPointIn& p : points) {
    if (p.seq <= 0) {
      reply(Status::InvalidArgument("metric seq must start at 1, got " + std::to_string(p.seq)));
      return;
    }
    if (!p.read) ReadMetricLine(p);
  }
  WriteAsync<MetricsStored>(
      [this, attempt_id = std::move(attempt_id), token, points = std::move(points),
       now_ms](Database& db) -> Result<MetricsStored> {
        Result<AttemptRow> a = LoadLiveAttempt(db, attempt_id, token);
        if (!a.ok()) return a.status();
        // Sixteen rows per statement while there are that many, then one at a time.
        size_t i = 0;
        while (i < points.size()) {
          const size_t rows = points.size() - i >= kMetricRowsPerInsert ? kMetricRowsPerInsert : 1;
          Query q = db.Prepare(rows == 1 ? kInsertMetricRow : kInsertMetricRows);
          for (size_t r = 0; r < rows; ++r, ++i) {
            const int at = static_cast<int>(r) * 7;
            q.Bind(at + 1, attempt_id).Bind(at + 2, points[i].seq).Bind(at + 3, a->job_id);
            q.Bind(at + 4, points[i].type);
            if (points[i].step) {
              q.Bind(at + 5, *points[i].step);
            } else {
              q.BindNull(at + 5);
            }
            q.Bind(at + 6, points[i].json).Bind(at + 7, now_ms);
          }
          SWEEPD_RETURN_IF_ERROR(q.Run());
        }
        int64_t through = a->metrics_through;
        {
          Query q = db.Prepare(
              "SELECT seq FROM metric_points WHERE attempt_id = ? AND seq > ? ORDER BY seq");
          q.Bind(1, attempt_id).Bind(2, through);
          while (q.Step() && q.Int(0) == through + 1) ++through;
          SWEEPD_RETURN_IF_ERROR(q.status());
        }
        SWEEPD_RETURN_IF_ERROR(
            db.Prepare("UPDATE attempts SET metrics_through = ? WHERE attempt_id = ?")
                .Bind(1, through)
                .Bind(2, attempt_id)
                .Run());
        // Metrics prove the trainer runs, even if AttemptStarted was lost.
        if (a->state == "leased" && !points.empty()) {
          SWEEPD_RETURN_IF_ERROR(
              db.Prepare(
                    "UPDATE attempts SET state = 'running', started_ms = ? WHERE attempt_id = ?")
                  .Bind(1, now_ms)
                  .Bind(2, attempt_id)
                  .Run());
          SWEEPD_RETURN_IF_ERROR(SetJobState(db, a->job_id, JobState::kRunning, now_ms));
        }
        return MetricsStored{through, a->job_id};
      },
      std::move(reply));
}

Status Store::FinishAttempt(const FinishReport& r, const BackoffPolicy& backoff, int64_t now_ms,
                            AttemptEnd* ended) {
  Result<AttemptEnd> out = Await<AttemptEnd>(
      [&](Reply<AttemptEnd> reply) { FinishAttemptAsync(r, backoff, now_ms, std::move(reply)); });
  if (!out.ok()) return out.status();
  if (ended != nullptr) *ended = std::move(*out);
  return Status::Ok();
}

void Store::FinishAttemptAsync(FinishReport r, BackoffPolicy backoff, int64_t now_ms,
                               Reply<AttemptEnd> reply) {
  WriteAsync<AttemptEnd>(
      [this, r = std::move(r), backoff, now_ms](Database& db) -> Result<AttemptEnd> {
        Result<AttemptRow> found = LoadAttempt(db, r.attempt_id);
        if (!found.ok()) return found.status();
        // A repeated finish (its response was lost) is answered as the first one was.
        if (found->state == "finished" && found->fencing_token == r.fencing_token &&
            found->outcome == r.outcome) {
          return AttemptEnd{};  // already counted
        }
        Result<AttemptRow> a = LoadLiveAttempt(db, r.attempt_id, r.fencing_token);
        if (!a.ok()) return a.status();
        if (a->metrics_through < r.last_metric_seq) {
          // Retryable: the worker's metric stream is still delivering them.
          return Status::Unavailable("metrics of " + r.attempt_id + " are stored through seq " +
                                     std::to_string(a->metrics_through) + " of " +
                                     std::to_string(r.last_metric_seq) + "; send the rest first");
        }
        std::string outcome_name = r.outcome;
        std::string error = outcome_name == outcome::kSucceeded ? "" : ErrorText(r);
        std::string result_json = r.result_json;
        if (outcome_name == outcome::kSucceeded && result_json.empty()) {
          Query q = db.Prepare(
              "SELECT json FROM metric_points WHERE attempt_id = ? AND type = 'final' ORDER BY seq "
              "DESC LIMIT 1");
          q.Bind(1, r.attempt_id);
          if (q.Step()) result_json = q.Text(0);
          SWEEPD_RETURN_IF_ERROR(q.status());
        }
        if (outcome_name == outcome::kSucceeded &&
            !json::parse(result_json, nullptr, false).is_object()) {
          outcome_name = outcome::kCrashed;
          error = "the trainer exited 0 without a final metrics line (docs/metrics.md)";
        }
        {
          Query q = db.Prepare(
              "UPDATE attempts SET state = 'finished', finished_ms = ?, outcome = ?, exit_code = "
              "?, "
              "signal = ?, "
              "stderr_tail = ? WHERE attempt_id = ?");
          q.Bind(1, now_ms).Bind(2, outcome_name).Bind(3, static_cast<int64_t>(r.exit_code));
          q.Bind(4, static_cast<int64_t>(r.signal)).Bind(5, r.stderr_tail).Bind(6, r.attempt_id);
          SWEEPD_RETURN_IF_ERROR(q.Run());
        }
        if (outcome_name == outcome::kSucceeded) {
          SWEEPD_RETURN_IF_ERROR(db.Prepare("INSERT OR REPLACE INTO results (job_id, attempt_id, "
                                            "result_json, finished_ms) VALUES (?, ?, ?, ?)")
                                     .Bind(1, a->job_id)
                                     .Bind(2, r.attempt_id)
                                     .Bind(3, result_json)
                                     .Bind(4, now_ms)
                                     .Run());
        }
        SWEEPD_RETURN_IF_ERROR(
            SettleJob(db, a->job_id, outcome_name, a->cancel_requested, error, backoff, now_ms));
        AttemptEnd end{a->job_id, JobState::kFailed};
        Query q = db.Prepare("SELECT state FROM jobs WHERE job_id = ?");
        q.Bind(1, a->job_id);
        if (q.Step()) end.job_state = ParseJobState(q.Text(0)).value_or(JobState::kFailed);
        SWEEPD_RETURN_IF_ERROR(q.status());
        return end;
      },
      std::move(reply));
}

Result<std::vector<std::string>> Store::ExpireLeases(const BackoffPolicy& backoff, int64_t now_ms) {
  return Write<std::vector<std::string>>([&](Database& db) -> Result<std::vector<std::string>> {
    std::vector<std::tuple<std::string, std::string, bool>> expired;
    {
      Query q = db.Prepare(
          "SELECT attempt_id, job_id, cancel_requested FROM attempts "
          "WHERE state IN ('leased', 'running') AND lease_expires_ms < ?");
      q.Bind(1, now_ms);
      while (q.Step()) expired.emplace_back(q.Text(0), q.Text(1), q.Int(2) != 0);
      SWEEPD_RETURN_IF_ERROR(q.status());
    }
    std::vector<std::string> ids;
    for (const auto& [attempt_id, job_id, cancel] : expired) {
      SWEEPD_RETURN_IF_ERROR(
          db.Prepare(
                "UPDATE attempts SET state = 'expired', outcome = 'lease_expired', finished_ms = ? "
                "WHERE attempt_id = ?")
              .Bind(1, now_ms)
              .Bind(2, attempt_id)
              .Run());
      SWEEPD_RETURN_IF_ERROR(SettleJob(db, job_id, outcome::kLeaseExpired, cancel,
                                       "lease expired: the worker stopped heartbeating", backoff,
                                       now_ms));
      ids.push_back(attempt_id);
    }
    return ids;
  });
}

Status Store::MarkLostWorkers(int64_t now_ms, int64_t silence_ms) {
  return WriteStatus([&](Database& db) -> Status {
    SWEEPD_RETURN_IF_ERROR(db.Prepare("UPDATE workers SET state = 'lost' WHERE state IN ('alive', "
                                      "'draining') AND last_heartbeat_ms < ?")
                               .Bind(1, now_ms - silence_ms)
                               .Run());
    return Status::Ok();
  });
}

Status Store::CheckpointWal() {
  SWEEPD_CONNECT(db);
  return db.ExecScript("PRAGMA wal_checkpoint(PASSIVE);");
}

Result<int64_t> Store::QueueDepth(int64_t now_ms) {
  SWEEPD_CONNECT(db);
  Query q = db.Prepare("SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND not_before_ms <= ?");
  q.Bind(1, now_ms);
  int64_t n = 0;
  if (q.Step()) n = q.Int(0);
  SWEEPD_RETURN_IF_ERROR(q.status());
  return n;
}

Result<std::string> Store::JobOfAttempt(const std::string& attempt_id) {
  SWEEPD_CONNECT(db);
  Result<AttemptRow> a = LoadAttempt(db, attempt_id);
  if (!a.ok()) return a.status();
  return a->job_id;
}

Result<std::vector<WorkerRecord>> Store::ListWorkers() {
  SWEEPD_CONNECT(db);
  std::vector<WorkerRecord> out;
  {
    Query q = db.Prepare(
        "SELECT worker_id, hostname, version, slots_json, labels_json, state, registered_ms, "
        "last_heartbeat_ms "
        "FROM workers ORDER BY registered_ms, worker_id");
    while (q.Step()) {
      WorkerRecord w;
      w.worker_id = q.Text(0);
      w.hostname = q.Text(1);
      w.version = q.Text(2);
      const json slots = json::parse(q.Text(3), nullptr, false);
      if (slots.is_array()) {
        for (const json& s : slots) {
          w.slots.push_back({s.value("index", 0), s.value("device_kind", ""),
                             s.value("device_name", ""), s.value("memory_bytes", int64_t{0}),
                             s.value("compute_capability", "")});
        }
      }
      const json labels = json::parse(q.Text(4), nullptr, false);
      if (labels.is_object()) {
        for (const auto& [k, v] : labels.items()) {
          if (v.is_string()) w.labels[k] = v.get<std::string>();
        }
      }
      w.state = q.Text(5);
      w.registered_ms = q.Int(6);
      w.last_heartbeat_ms = q.Int(7);
      out.push_back(std::move(w));
    }
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  for (WorkerRecord& w : out) {
    Query q = db.Prepare(
        "SELECT job_id FROM attempts WHERE worker_id = ? AND state IN ('leased', 'running')");
    q.Bind(1, w.worker_id);
    while (q.Step()) w.running_jobs.push_back(q.Text(0));
    SWEEPD_RETURN_IF_ERROR(q.status());
  }
  return out;
}

}  // namespace sweepd::server
