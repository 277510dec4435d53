// JobQueueIndex: an in-memory mirror of the jobs a lease can concern (queued, leased,
// running) and of the sweeps, so that LeaseJob picks its job without scanning SQLite.
// It holds no decisions of its own: the store refreshes entries from the rows it just
// wrote (see Store), and the index only answers "which queued job comes first" by the
// order the store documents (docs/coordinator.md, "Leasing"). Not thread-safe: only the
// store's writer thread uses it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace sweepd::store {

// What the index needs of a job row (jobs.rowid identifies it).
struct IndexedJob {
  int64_t rowid = 0;
  std::string job_id;
  std::string state;  // as stored; only queued, leased and running jobs are kept
  int64_t priority = 0;
  int64_t created_ms = 0;
  int64_t not_before_ms = 0;
  std::string device_kind;
  int64_t memory_bytes = 0;
  int64_t devices = 1;  // the job's config `devices` (resources.gpus_per_job)
  std::vector<std::string> sweeps;  // every sweep that includes the job, sorted

  bool operator==(const IndexedJob&) const = default;
};

struct IndexedSweep {
  std::string name;
  int64_t priority = 0;
  int64_t submitted_ms = 0;
  bool cancelled = false;

  bool operator==(const IndexedSweep&) const = default;
};

class JobQueueIndex {
 public:
  // Adds or replaces the sweep's row.
  void PutSweep(const IndexedSweep& sweep);
  // Adds or replaces the job; a job in any other state than queued, leased or running is
  // dropped.
  void PutJob(IndexedJob job);
  void RemoveJob(int64_t rowid);
  void Clear();

  // The job a slot of `device_kind` with `free_memory_bytes` (0: unknown) should run at
  // `now_ms`: among queued jobs whose backoff has passed and that fit, the sweep with the
  // highest priority, then the fewest jobs leased or running (fair share), then the
  // oldest (then by name); inside it the first job by (priority desc, created, rowid),
  // which is grid order. A job fits when its memory and its device count
  // (`free_devices`: what the worker can give one job) do. nullopt when none fits.
  std::optional<int64_t> Pick(const std::string& device_kind, int64_t free_memory_bytes,
                              int64_t now_ms, int64_t free_devices = 1);
  // The earliest time a queued job that fits becomes eligible, if later than `now_ms`;
  // 0 when none waits.
  int64_t NextEligibleMs(const std::string& device_kind, int64_t free_memory_bytes,
                         int64_t now_ms, int64_t free_devices = 1) const;

  const IndexedJob* Find(int64_t rowid) const;
  // Every job and sweep, for comparing the index with the database.
  std::vector<IndexedJob> Jobs() const;
  std::vector<IndexedSweep> Sweeps() const;

 private:
  // Order of queued jobs inside a sweep: priority desc, created, rowid.
  using QueueKey = std::tuple<int64_t, int64_t, int64_t>;
  struct SweepQueues {
    IndexedSweep info;
    std::map<std::string, std::set<QueueKey>> ready;  // by device kind
    int64_t active = 0;                               // jobs leased or running
  };

  static QueueKey KeyOf(const IndexedJob& job) {
    return {-job.priority, job.created_ms, job.rowid};
  }
  static bool Fits(const IndexedJob& job, int64_t free_memory_bytes, int64_t free_devices) {
    return (job.memory_bytes == 0 || free_memory_bytes == 0 || job.memory_bytes <= free_memory_bytes) &&
           job.devices <= std::max<int64_t>(1, free_devices);
  }
  SweepQueues& QueuesOf(const std::string& sweep);
  void Link(const IndexedJob& job);    // into ready/delayed sets and active counts
  void Unlink(const IndexedJob& job);  // the reverse
  void AddReady(const IndexedJob& job);
  // Moves jobs whose backoff passed by `now_ms` from delayed_ into the ready queues.
  void Promote(int64_t now_ms);
  // The first queued job of the sweep that the slot can run now.
  const IndexedJob* FirstFit(const SweepQueues& sweep, const std::string& device_kind,
                             int64_t free_memory_bytes, int64_t now_ms, int64_t free_devices) const;

  std::unordered_map<int64_t, IndexedJob> jobs_;  // by rowid
  std::map<std::string, SweepQueues> sweeps_;     // by name: ties go to the first name
  // Queued jobs still backing off, by (not_before_ms, rowid); moved to the ready queues by
  // Promote. A ready job whose not_before_ms is ahead of a caller's clock is skipped.
  std::set<std::pair<int64_t, int64_t>> delayed_;
  int64_t promoted_through_ms_ = 0;
};

}  // namespace sweepd::store
