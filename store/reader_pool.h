// ReaderPool: the store's read connections, lent to one read at a time and given back when
// it ends, so no connection outlives its call (gRPC's sync server starts and ends threads as
// calls come and go; a connection per thread leaked two descriptors per thread ever seen).
// Keeps at most `max_idle` connections open between reads (the rest are closed on return)
// and at most `max_open` at all: a read beyond that waits for one to come back, so many
// concurrent calls cannot take every file descriptor.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/database.h"

namespace sweepd::store {

class ReaderPool {
 public:
  // A connection lent to the caller; goes back to its pool when destroyed.
  class Loan {
   public:
    Loan(ReaderPool& pool, std::unique_ptr<Database> db) : pool_(&pool), db_(std::move(db)) {}
    ~Loan();
    Loan(Loan&& other) noexcept = default;
    Loan& operator=(Loan&&) = delete;
    Loan(const Loan&) = delete;
    Loan& operator=(const Loan&) = delete;
    Database& db() { return *db_; }

   private:
    ReaderPool* pool_;
    std::unique_ptr<Database> db_;  // null once moved from
  };

  ReaderPool(std::string path, size_t max_idle, size_t max_open)
      : path_(std::move(path)), max_idle_(max_idle), max_open_(std::max(max_open, max_idle)) {}

  // An idle connection, or a new one to `path`; waits while `max_open` are lent. Must not be
  // called while the caller holds a loan (it could wait for itself). Thread-safe.
  Result<Loan> Borrow();
  // Connections open right now, lent or idle (tests and diagnostics).
  size_t open() const;

 private:
  void GiveBack(std::unique_ptr<Database> db);

  const std::string path_;
  const size_t max_idle_;
  const size_t max_open_;
  mutable std::mutex mu_;
  std::condition_variable returned_;  // a connection came back, or one was closed
  std::vector<std::unique_ptr<Database>> idle_;  // guarded by mu_
  size_t open_ = 0;                              // guarded by mu_
};

}  // namespace sweepd::store
