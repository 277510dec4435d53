// The in-memory queue behind LeaseJob: per sweep and device kind, queued jobs in grid
// order; jobs backing off wait in one set ordered by the time they become eligible.
#include "store/job_queue_index.h"

#include <algorithm>

namespace sweepd::store {
namespace {

bool IsActive(const std::string& state) { return state == "leased" || state == "running"; }
bool IsIndexed(const std::string& state) { return state == "queued" || IsActive(state); }

}  // namespace

void JobQueueIndex::PutSweep(const IndexedSweep& sweep) { QueuesOf(sweep.name).info = sweep; }

JobQueueIndex::SweepQueues& JobQueueIndex::QueuesOf(const std::string& sweep) {
  SweepQueues& q = sweeps_[sweep];
  q.info.name = sweep;
  return q;
}

void JobQueueIndex::PutJob(IndexedJob job) {
  RemoveJob(job.rowid);
  if (!IsIndexed(job.state)) return;
  std::sort(job.sweeps.begin(), job.sweeps.end());
  Link(job);
  jobs_.emplace(job.rowid, std::move(job));
}

void JobQueueIndex::RemoveJob(int64_t rowid) {
  auto it = jobs_.find(rowid);
  if (it == jobs_.end()) return;
  Unlink(it->second);
  jobs_.erase(it);
}

void JobQueueIndex::Clear() {
  jobs_.clear();
  sweeps_.clear();
  delayed_.clear();
  promoted_through_ms_ = 0;
}

void JobQueueIndex::Link(const IndexedJob& job) {
  if (IsActive(job.state)) {
    for (const std::string& s : job.sweeps) ++QueuesOf(s).active;
    return;
  }
  if (job.not_before_ms > promoted_through_ms_) {
    delayed_.emplace(job.not_before_ms, job.rowid);
  } else {
    AddReady(job);
  }
}

void JobQueueIndex::AddReady(const IndexedJob& job) {
  for (const std::string& s : job.sweeps) QueuesOf(s).ready[job.device_kind].insert(KeyOf(job));
}

void JobQueueIndex::Unlink(const IndexedJob& job) {
  if (IsActive(job.state)) {
    for (const std::string& s : job.sweeps) --QueuesOf(s).active;
    return;
  }
  delayed_.erase({job.not_before_ms, job.rowid});
  for (const std::string& s : job.sweeps) {
    auto queues = sweeps_.find(s);
    if (queues == sweeps_.end()) continue;
    auto ready = queues->second.ready.find(job.device_kind);
    if (ready != queues->second.ready.end()) ready->second.erase(KeyOf(job));
  }
}

void JobQueueIndex::Promote(int64_t now_ms) {
  if (now_ms <= promoted_through_ms_) return;
  promoted_through_ms_ = now_ms;
  while (!delayed_.empty() && delayed_.begin()->first <= now_ms) {
    const int64_t rowid = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    auto it = jobs_.find(rowid);
    if (it != jobs_.end()) AddReady(it->second);
  }
}

const IndexedJob* JobQueueIndex::FirstFit(const SweepQueues& sweep, const std::string& device_kind,
                                          int64_t free_memory_bytes, int64_t now_ms,
                                          int64_t free_devices) const {
  auto ready = sweep.ready.find(device_kind);
  if (ready == sweep.ready.end()) return nullptr;
  for (const QueueKey& key : ready->second) {
    const IndexedJob& job = jobs_.at(std::get<2>(key));
    // not_before_ms is only ahead of now_ms when a caller's clock went back (tests).
    if (Fits(job, free_memory_bytes, free_devices) && job.not_before_ms <= now_ms) return &job;
  }
  return nullptr;
}

std::optional<int64_t> JobQueueIndex::Pick(const std::string& device_kind,
                                           int64_t free_memory_bytes, int64_t now_ms,
                                           int64_t free_devices) {
  Promote(now_ms);
  const SweepQueues* best = nullptr;
  const IndexedJob* best_job = nullptr;
  for (const auto& [_, sweep] : sweeps_) {
    if (sweep.info.cancelled) continue;
    const IndexedJob* job = FirstFit(sweep, device_kind, free_memory_bytes, now_ms, free_devices);
    if (job == nullptr) continue;
    const IndexedSweep& c = sweep.info;
    if (best == nullptr || std::tie(c.priority, best->active, best->info.submitted_ms) >
                               std::tie(best->info.priority, sweep.active, c.submitted_ms)) {
      best = &sweep;
      best_job = job;
    }
  }
  if (best_job == nullptr) return std::nullopt;
  return best_job->rowid;
}

int64_t JobQueueIndex::NextEligibleMs(const std::string& device_kind, int64_t free_memory_bytes,
                                      int64_t now_ms, int64_t free_devices) const {
  for (const auto& [not_before_ms, rowid] : delayed_) {
    if (not_before_ms <= now_ms) continue;
    const IndexedJob& job = jobs_.at(rowid);
    if (job.device_kind == device_kind && Fits(job, free_memory_bytes, free_devices)) return not_before_ms;
  }
  return 0;
}

const IndexedJob* JobQueueIndex::Find(int64_t rowid) const {
  auto it = jobs_.find(rowid);
  return it == jobs_.end() ? nullptr : &it->second;
}

std::vector<IndexedJob> JobQueueIndex::Jobs() const {
  std::vector<IndexedJob> out;
  out.reserve(jobs_.size());
  for (const auto& [_, job] : jobs_) out.push_back(job);
  std::sort(out.begin(), out.end(),
            [](const IndexedJob& a, const IndexedJob& b) { return a.rowid < b.rowid; });
  return out;
}

std::vector<IndexedSweep> JobQueueIndex::Sweeps() const {
  std::vector<IndexedSweep> out;
  for (const auto& [_, sweep] : sweeps_) out.push_back(sweep.info);
  return out;
}

}  // namespace sweepd::store
