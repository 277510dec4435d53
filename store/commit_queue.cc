// Group commit: one writer thread, one transaction per batch of waiting works, one
// savepoint per work, answers after COMMIT.
#include "store/commit_queue.h"

#include <exception>
#include <future>
#include <utility>
#include <vector>

namespace sweepd::store {

CommitQueue::CommitQueue(std::unique_ptr<Database> db, Observer* observer, size_t max_batch)
    : db_(std::move(db)), observer_(observer), max_batch_(max_batch == 0 ? 1 : max_batch) {
  writer_ = std::thread([this] { WriterLoop(); });
}

CommitQueue::~CommitQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
}

Status CommitQueue::Run(Work work) {
  std::promise<Status> done;
  std::future<Status> result = done.get_future();
  Submit(std::move(work), [&done](Status s) { done.set_value(std::move(s)); });
  return result.get();
}

void CommitQueue::Submit(Work work, std::function<void(Status)> done) {
  bool queued = false, first = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.push_back(Pending{std::move(work), std::move(done)});
      queued = true;
      first = queue_.size() == 1;
    }
  }
  if (!queued) {
    done(Status::Unavailable("sweepd is shutting down; try again once it is back"));
    return;
  }
  // The writer waits only on an empty queue, and whoever made it non-empty wakes it.
  if (first) wake_.notify_one();
}

void CommitQueue::WriterLoop() {
  std::deque<Pending> batch;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has run
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    RunBatch(batch);
    batch.clear();
  }
}

void CommitQueue::RunBatch(std::deque<Pending>& batch) {
  std::vector<Status> results(batch.size());
  Status begun = db_->Prepare("BEGIN IMMEDIATE").Run();
  if (!begun.ok()) {
    for (Pending& p : batch) p.done(begun);
    return;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    Status saved = db_->Prepare("SAVEPOINT work").Run();
    if (!saved.ok()) {
      results[i] = saved;
      continue;
    }
    try {
      results[i] = batch[i].work(*db_);
    } catch (const std::exception& e) {  // e.g. from JSON handling; must not end the writer
      results[i] = Status::Internal(std::string("unexpected error while writing: ") + e.what());
    }
    if (!results[i].ok()) db_->Prepare("ROLLBACK TO work").Run();
    db_->Prepare("RELEASE work").Run();
    if (observer_) observer_->WorkEnded(*db_);
  }
  Status committed = db_->Prepare("COMMIT").Run();
  if (!committed.ok()) {
    db_->Prepare("ROLLBACK").Run();  // fails harmlessly when SQLite already rolled back
    const Status lost = Status::Unavailable("the write was not stored (" + committed.message() +
                                            "); send it again");
    for (Status& s : results) {
      if (s.ok()) s = lost;
    }
  }
  if (observer_) observer_->BatchEnded(*db_, committed.ok());
  for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
}

}  // namespace sweepd::store
