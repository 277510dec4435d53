// Row mapping between sweepd's tables and the store's records; see row_mapping.h.
#include "store/row_mapping.h"

#include <nlohmann/json.hpp>

namespace sweepd::store {

using nlohmann::json;

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

WorkerRecord ReadWorker(const Query& q) {
  WorkerRecord w;
  w.worker_id = q.Text(0);
  w.hostname = q.Text(1);
  w.version = q.Text(2);
  // Every access checks the type: a row written by another version must not abort a reader.
  const json slots = json::parse(q.Text(3), nullptr, false);
  if (slots.is_array()) {
    for (const json& s : slots) {
      if (!s.is_object()) continue;
      auto text = [&](const char* key) {
        auto it = s.find(key);
        return it != s.end() && it->is_string() ? it->get<std::string>() : std::string();
      };
      auto integer = [&](const char* key) {
        auto it = s.find(key);
        return it != s.end() && it->is_number_integer() ? it->get<int64_t>() : int64_t{0};
      };
      w.slots.push_back({static_cast<int>(integer("index")), text("device_kind"),
                         text("device_name"), integer("memory_bytes"),
                         text("compute_capability")});
    }
  }
  const json labels = json::parse(q.Text(4), nullptr, false);
  if (labels.is_object()) {
    for (const auto& [k, v] : labels.items()) {
      w.labels[k] = v.is_string() ? v.get<std::string>() : v.dump();
    }
  }
  w.state = q.Text(5);
  w.registered_ms = q.Int(6);
  w.last_heartbeat_ms = q.Int(7);
  return w;
}

std::string SlotsJson(const WorkerRecord& worker) {
  json slots = json::array();
  for (const SlotInfo& s : worker.slots) {
    slots.push_back({{"index", s.index},
                     {"device_kind", s.device_kind},
                     {"device_name", s.device_name},
                     {"memory_bytes", s.memory_bytes},
                     {"compute_capability", s.compute_capability}});
  }
  return slots.dump();
}

std::string LabelsJson(const WorkerRecord& worker) { return json(worker.labels).dump(); }

namespace {

Status LoadDeps(Database& db, JobRecord& job) {
  Query q = db.Prepare("SELECT depends_on FROM job_deps WHERE job_id = ? ORDER BY depends_on");
  q.Bind(1, job.job_id);
  while (q.Step()) job.depends_on.push_back(q.Text(0));
  return q.status();
}

}  // namespace

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

Status SweepExists(Database& db, const std::string& name) {
  Query q = db.Prepare("SELECT 1 FROM sweeps WHERE name = ?");
  q.Bind(1, name);
  if (q.Step()) return Status::Ok();
  SWEEPD_RETURN_IF_ERROR(q.status());
  return Status::NotFound("no sweep '" + name + "'; list sweeps with sweepctl list");
}

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

Result<AttemptRow> LoadLiveAttempt(Database& db, const std::string& attempt_id, int64_t token) {
  Result<AttemptRow> a = LoadAttempt(db, attempt_id);
  if (!a.ok()) return a;
  const bool live = a->state == "leased" || a->state == "running";
  if (!live || a->fencing_token != token) {
    return Status::FailedPrecondition("attempt " + attempt_id +
                                      " no longer holds its lease (expired, finished or replaced); "
                                      "stop it and discard its output");
  }
  return a;
}

}  // namespace sweepd::store
