// Queue-index sync: the writer's JobQueueIndex follows every row the store writes. SQLite's
// update hook names each changed jobs/sweeps/sweep_jobs row; after each piece of write work
// those rows are re-read into the index, and after a failed COMMIT it is rebuilt.
#include "store/store.h"

#include <algorithm>
#include <map>
#include <string_view>

namespace sweepd::store {

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
  "j.memory_bytes, COALESCE(json_extract(j.config_json, '$.devices'), 1)"

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
  job.devices = q.Int(8);
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

}  // namespace sweepd::store
