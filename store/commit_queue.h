// CommitQueue: sweepd's one writer (group commit, as in database logs since IMS FastPath and
// in SQLite's own advice for many small writes). Callers on any thread hand it a piece of
// write work; one writer thread runs the works that are waiting back to back on its own
// connection inside one BEGIN IMMEDIATE transaction, each inside its own SAVEPOINT (a work
// that fails is rolled back alone), then COMMITs once and only then answers every caller.
// So an answered change is durable, and many concurrent callers share one lock and one WAL
// write instead of queueing for the lock one by one.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "common/status.h"
#include "store/database.h"

namespace sweepd::store {

class CommitQueue {
 public:
  // Runs on the writer thread inside the batch's transaction; a non-OK status rolls back
  // this work's writes (and only them).
  using Work = std::function<Status(Database&)>;

  // Told about the end of each work and of each batch, on the writer thread, so that
  // in-memory state derived from the rows can follow them.
  class Observer {
   public:
    virtual ~Observer() = default;
    // After the work's writes were kept (RELEASE) or undone (ROLLBACK TO).
    virtual void WorkEnded(Database& db) = 0;
    // After COMMIT; `committed` false: the whole batch was rolled back.
    virtual void BatchEnded(Database& db, bool committed) = 0;
  };

  // Takes the connection over; `observer` (may be null) must outlive the queue.
  // `max_batch` bounds how many works share one transaction (and so the wait of the last).
  CommitQueue(std::unique_ptr<Database> db, Observer* observer, size_t max_batch = 128);
  // Runs what is queued, then stops the writer thread.
  ~CommitQueue();
  CommitQueue(const CommitQueue&) = delete;
  CommitQueue& operator=(const CommitQueue&) = delete;

  // Queues `work` and waits until the transaction that holds its writes is committed.
  // Returns the work's status, or the commit's error (then nothing of it was kept).
  // Must not be called from inside a work.
  Status Run(Work work);
  // Queues `work` and returns at once; `done` gets what Run would return, on the writer
  // thread, after the COMMIT. `done` must not call Run (it would wait for itself).
  void Submit(Work work, std::function<void(Status)> done);

 private:
  struct Pending {
    Work work;
    std::function<void(Status)> done;
  };

  void WriterLoop();
  void RunBatch(std::deque<Pending>& batch);

  std::unique_ptr<Database> db_;  // used only by the writer thread
  Observer* observer_;            // not owned; may be null
  const size_t max_batch_;
  std::mutex mu_;  // guards queue_ and stopping_
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace sweepd::store
