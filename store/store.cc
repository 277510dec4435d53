// The store's public API: each method one write transaction on the writer (or one read on
// the caller's connection, through StoreReader). The rules a write applies to a job's state
// are store/job_lifecycle.cc's; the queue index is kept in step by store/queue_index_sync.cc.
#include "store/store.h"

#include <algorithm>
#include <cctype>
#include <random>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/job_config.h"
#include "store/migrations.h"
#include "store/row_mapping.h"
#include "store/writable_check.h"

namespace sweepd::store {
namespace {

using nlohmann::json;

std::string ErrorText(const FinishReport& r) {
  std::string text(OutcomeName(r.outcome));
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

// A leased job's configuration carries the base model's scores (and fingerprint) from the
// result of its base_eval dependency, patched through JobConfig; a configuration or a
// result that does not read stays as it is (the trainer then evaluates the base itself).
Status AddBaseScores(Database& db, JobRecord& job) {
  const json stored = json::parse(job.config_json, nullptr, false);
  if (!stored.is_object()) return Status::Ok();
  Result<JobConfig> config = JobConfigFromJson(stored);
  if (!config.ok() || config->base_eval_job.empty()) return Status::Ok();
  Query q = db.Prepare("SELECT result_json FROM results WHERE job_id = ?");
  q.Bind(1, config->base_eval_job);
  const bool found = q.Step();
  SWEEPD_RETURN_IF_ERROR(q.status());
  if (!found) return Status::Ok();
  Result<MetricLine> result = MetricLine::Read(q.Text(0));
  if (!result.ok()) return Status::Ok();
  std::optional<std::map<std::string, double>> scores =
      ReadScores(result->value(), metric_key::kScores);
  if (!scores) return Status::Ok();
  config->base_scores = std::move(*scores);
  if (std::optional<std::string> fp = result->Text(metric_key::kBaseFingerprint)) {
    config->base_fingerprint = std::move(*fp);
  }
  job.config_json = ToJson(*config).dump();
  return Status::Ok();
}

// Ok when `text` is a final line that counts as success: every field docs/metrics.md
// requires, of its type and in range (FinalLine); else why not.
Status CheckFinalLine(const std::string& text) {
  if (text.empty()) {
    return Status::InvalidArgument(
        "the trainer exited 0 without a final metrics line (docs/metrics.md)");
  }
  Result<MetricLine> line = MetricLine::Read(text);
  if (!line.ok()) return Status::InvalidArgument("the final line is no metric line: " + line.status().message());
  Result<FinalLine> final_line = FinalLine::Read(*line);
  if (!final_line.ok()) {
    return Status::InvalidArgument("the final line does not count as success: " +
                                   final_line.status().message());
  }
  return Status::Ok();
}

std::string RandomHex(int n) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < n; ++i) out += digits[rng() % 16];
  return out;
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, int64_t now_ms) {
  SWEEPD_RETURN_IF_ERROR(CheckWritable(path));
  std::unique_ptr<Store> store(new Store(path));
  Result<std::unique_ptr<Database>> writer = Database::Open(path);
  if (!writer.ok()) return writer.status();
  Database& db = **writer;
  SWEEPD_RETURN_IF_ERROR(ApplyMigrations(db, EmbeddedMigrations(), now_ms));
  {
    // Taking the write lock needs a writable -wal: the last check before serving.
    Transaction probe(db);
    Status began = probe.status();
    if (began.ok()) began = probe.Commit();
    if (!began.ok()) {
      return Status::FailedPrecondition("database " + path + " cannot be written (" + began.message() +
                                        "); make it and its folder writable");
    }
  }
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


// The reads: StoreReader's queries on a borrowed connection, given back when the read ends.
#define SWEEPD_READ(call)                     \
  Result<ReaderPool::Loan> loan = readers_.Borrow(); \
  if (!loan.ok()) return loan.status();       \
  return StoreReader(loan->db()).call

Result<std::vector<SweepRecord>> Store::ListSweeps() { SWEEPD_READ(ListSweeps()); }
Result<SweepRecord> Store::GetSweep(const std::string& name) { SWEEPD_READ(GetSweep(name)); }
Result<std::vector<JobRecord>> Store::SweepJobs(const std::string& name) {
  SWEEPD_READ(SweepJobs(name));
}
Result<std::vector<JobRecord>> Store::SweepJobsChangedSince(const std::string& name,
                                                            int64_t since_ms) {
  SWEEPD_READ(SweepJobs(name, since_ms));
}
Result<JobRecord> Store::GetJob(const std::string& job_id) { SWEEPD_READ(GetJob(job_id)); }
Result<std::vector<ResultRecord>> Store::QueryResults(const std::string& sweep) {
  // sweepd answers one sweep at a time (the reader's "every sweep" is for sweepctl --db).
  if (sweep.empty()) return Status::NotFound("no sweep ''; list sweeps with sweepctl list");
  SWEEPD_READ(QueryResults(sweep));
}
Result<JobLog> Store::GetJobLog(const std::string& job_id, int64_t after_seq) {
  SWEEPD_READ(GetJobLog(job_id, after_seq));
}
Result<std::vector<RunningProgress>> Store::RunningProgressOf(const std::string& sweep) {
  SWEEPD_READ(RunningProgressOf(sweep));
}
Result<std::vector<WorkerRecord>> Store::ListWorkers() { SWEEPD_READ(ListWorkers()); }
Result<int64_t> Store::QueueDepth(int64_t now_ms) { SWEEPD_READ(QueueDepth(now_ms)); }
Result<std::string> Store::JobOfAttempt(const std::string& attempt_id) {
  SWEEPD_READ(JobOfAttempt(attempt_id));
}
Result<std::string> Store::WorkerOfAttempt(const std::string& attempt_id) {
  SWEEPD_READ(WorkerOfAttempt(attempt_id));
}

Result<std::vector<AuditEntry>> Store::ListAudit(int64_t since_ms) { SWEEPD_READ(Audit(since_ms)); }

Status Store::RecordAudit(AuditEntry entry) {
  return WriteStatus([&entry](Database& db) { return AppendAudit(db, entry); });
}

void Store::RecordAuditAsync(AuditEntry entry, StatusReply reply) {
  writer_->Submit([entry = std::move(entry)](Database& db) { return AppendAudit(db, entry); },
                  std::move(reply));
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
                  "UPDATE jobs SET state = 'cancelled', last_outcome = ?, updated_ms = ? "
                  "WHERE job_id = ?")
                .Bind(1, std::string(OutcomeName(Outcome::kCancelled)))
                .Bind(2, now_ms)
                .Bind(3, job_id)
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
                .Bind(4, SlotsJson(w))
                .Bind(5, LabelsJson(w))
                .Bind(6, now_ms)
                .Bind(7, now_ms)
                .Run());
        return id;
      },
      std::move(reply));
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
              (*index)->NextEligibleMs(r.device_kind, r.free_memory_bytes, now_ms, r.free_devices);
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
  const std::optional<int64_t> picked = (*index)->Pick(r.device_kind, r.free_memory_bytes, now_ms, r.free_devices);
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
  SWEEPD_RETURN_IF_ERROR(AddBaseScores(db, *job));
  job->state = JobState::kLeased;
  job->attempts = lease.attempt_number;
  job->updated_ms = now_ms;
  lease.job = std::move(*job);
  return std::optional<Lease>(std::move(lease));
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
    if (!p.line) p.line = MetricLine::Read(p.json);
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
            const Result<MetricLine>& line = *points[i].line;
            q.Bind(at + 4, line.ok() ? line->type() : std::string());
            if (line.ok() && line->step()) {
              q.Bind(at + 5, *line->step());
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


void Store::FinishAttemptAsync(FinishReport r, BackoffPolicy backoff, int64_t now_ms,
                               Reply<AttemptEnd> reply) {
  WriteAsync<AttemptEnd>(
      [this, r = std::move(r), backoff, now_ms](Database& db) -> Result<AttemptEnd> {
        Result<AttemptRow> found = LoadAttempt(db, r.attempt_id);
        if (!found.ok()) return found.status();
        // A repeated finish (its response was lost) is answered as the first one was.
        if (found->state == "finished" && found->fencing_token == r.fencing_token &&
            found->outcome == OutcomeName(r.outcome)) {
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
        Outcome outcome = r.outcome;
        std::string error = outcome == Outcome::kSucceeded ? "" : ErrorText(r);
        std::string result_json = r.result_json;
        if (outcome == Outcome::kSucceeded && result_json.empty()) {
          Query q = db.Prepare(
              "SELECT json FROM metric_points WHERE attempt_id = ? AND type = 'final' ORDER BY seq "
              "DESC LIMIT 1");
          q.Bind(1, r.attempt_id);
          if (q.Step()) result_json = q.Text(0);
          SWEEPD_RETURN_IF_ERROR(q.status());
        }
        if (outcome == Outcome::kSucceeded) {
          if (Status final_line = CheckFinalLine(result_json); !final_line.ok()) {
            outcome = Outcome::kCrashed;
            error = final_line.message();
          }
        }
        {
          Query q = db.Prepare(
              "UPDATE attempts SET state = 'finished', finished_ms = ?, outcome = ?, exit_code = "
              "?, "
              "signal = ?, "
              "stderr_tail = ? WHERE attempt_id = ?");
          q.Bind(1, now_ms).Bind(2, std::string(OutcomeName(outcome)));
          q.Bind(3, static_cast<int64_t>(r.exit_code));
          q.Bind(4, static_cast<int64_t>(r.signal)).Bind(5, r.stderr_tail).Bind(6, r.attempt_id);
          SWEEPD_RETURN_IF_ERROR(q.Run());
        }
        if (outcome == Outcome::kSucceeded) {
          SWEEPD_RETURN_IF_ERROR(db.Prepare("INSERT OR REPLACE INTO results (job_id, attempt_id, "
                                            "result_json, finished_ms) VALUES (?, ?, ?, ?)")
                                     .Bind(1, a->job_id)
                                     .Bind(2, r.attempt_id)
                                     .Bind(3, result_json)
                                     .Bind(4, now_ms)
                                     .Run());
        }
        SWEEPD_RETURN_IF_ERROR(
            SettleJob(db, a->job_id, outcome, a->cancel_requested, error, backoff, now_ms));
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
  return Write<std::vector<std::string>>(
      [&](Database& db) { return ExpireAttempts(db, backoff, now_ms); });
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
  Result<ReaderPool::Loan> loan = readers_.Borrow();
  if (!loan.ok()) return loan.status();
  return loan->db().ExecScript("PRAGMA wal_checkpoint(PASSIVE);");
}

}  // namespace sweepd::store
