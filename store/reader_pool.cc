// Lending read connections (see reader_pool.h).
#include "store/reader_pool.h"

namespace sweepd::store {

ReaderPool::Loan::~Loan() {
  if (db_) pool_->GiveBack(std::move(db_));
}

Result<ReaderPool::Loan> ReaderPool::Borrow() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    returned_.wait(lock, [this] { return !idle_.empty() || open_ < max_open_; });
    if (!idle_.empty()) {
      std::unique_ptr<Database> db = std::move(idle_.back());
      idle_.pop_back();
      return Loan(*this, std::move(db));
    }
    ++open_;  // counted before opening, so concurrent borrowers keep to max_open_
  }
  Result<std::unique_ptr<Database>> db = Database::Open(path_);
  if (!db.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      --open_;
    }
    returned_.notify_one();
    return db.status();
  }
  return Loan(*this, std::move(*db));
}

void ReaderPool::GiveBack(std::unique_ptr<Database> db) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < max_idle_) {
      idle_.push_back(std::move(db));
    } else {
      --open_;
    }
  }
  db.reset();  // closed outside the lock (when it was not kept)
  returned_.notify_one();
}

size_t ReaderPool::open() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

}  // namespace sweepd::store
