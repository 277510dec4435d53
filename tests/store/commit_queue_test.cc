// Group commit: a caller is answered only once its writes are committed (another
// connection sees them), a failing work is rolled back alone, and works from many threads
// all land.
#include "store/commit_queue.h"

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/process.h"

namespace sweepd::store {
namespace {

class RecordingObserver : public CommitQueue::Observer {
 public:
  void WorkEnded(Database&) override { ++works; }
  void BatchEnded(Database&, bool committed) override {
    ++batches;
    if (!committed) ++rolled_back;
  }
  std::atomic<int> works{0}, batches{0}, rolled_back{0};
};

class CommitQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = sweepd::testing::MakeTempDir("sweepd-commit-");
    path_ = dir_ + "/q.db";
    auto db = Database::Open(path_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->ExecScript("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)").ok());
    queue_ = std::make_unique<CommitQueue>(std::move(*db), &observer_);
    auto reader = Database::Open(path_);
    ASSERT_TRUE(reader.ok());
    reader_ = std::move(*reader);
  }
  void TearDown() override {
    queue_.reset();
    reader_.reset();
    std::filesystem::remove_all(dir_);
  }
  static Status Insert(Database& db, int64_t k) {
    return db.Prepare("INSERT INTO t (k, v) VALUES (?, 'x')").Bind(1, k).Run();
  }
  // Whether a separate connection sees row k (so it is committed).
  bool Committed(int64_t k) {
    Query q = reader_->Prepare("SELECT 1 FROM t WHERE k = ?");
    q.Bind(1, k);
    return q.Step();
  }

  std::string dir_, path_;
  RecordingObserver observer_;
  std::unique_ptr<CommitQueue> queue_;
  std::unique_ptr<Database> reader_;
};

TEST_F(CommitQueueTest, AnswerComesOnlyAfterTheWritesAreCommitted) {
  bool seen_inside_work = true;
  Status s = queue_->Run([&](Database& db) {
    SWEEPD_RETURN_IF_ERROR(Insert(db, 1));
    seen_inside_work = Committed(1);  // not yet: the batch's transaction is open
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_FALSE(seen_inside_work);
  EXPECT_TRUE(Committed(1));
  EXPECT_EQ(observer_.works, 1);
  EXPECT_GE(observer_.batches, 1);
  EXPECT_EQ(observer_.rolled_back, 0);
}

TEST_F(CommitQueueTest, FailingWorkIsRolledBackAloneAndOthersAreKept) {
  // Many threads at once, so works share batches; every third one fails after writing.
  std::vector<std::thread> threads;
  std::vector<Status> results(60);
  for (int i = 0; i < 60; ++i) {
    threads.emplace_back([&, i] {
      results[i] = queue_->Run([i](Database& db) {
        SWEEPD_RETURN_IF_ERROR(Insert(db, i));
        if (i % 3 == 0) return Status::FailedPrecondition("refused");
        return Status::Ok();
      });
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 60; ++i) {
    if (i % 3 == 0) {
      EXPECT_EQ(results[i].code(), StatusCode::kFailedPrecondition);
      EXPECT_FALSE(Committed(i)) << i;
    } else {
      EXPECT_TRUE(results[i].ok()) << i << ": " << results[i].message();
      EXPECT_TRUE(Committed(i)) << i;
    }
  }
  EXPECT_EQ(observer_.works, 60);
}

TEST_F(CommitQueueTest, ConstraintErrorFailsOnlyItsWork) {
  ASSERT_TRUE(queue_->Run([](Database& db) { return Insert(db, 7); }).ok());
  Status dup = queue_->Run([](Database& db) { return Insert(db, 7); });
  EXPECT_FALSE(dup.ok());
  EXPECT_TRUE(queue_->Run([](Database& db) { return Insert(db, 8); }).ok());
  EXPECT_TRUE(Committed(7));
  EXPECT_TRUE(Committed(8));
}

TEST_F(CommitQueueTest, QueuedWorkRunsBeforeTheQueueStops) {
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      if (queue_->Run([i](Database& db) { return Insert(db, 100 + i); }).ok()) ++done;
    });
  }
  for (auto& t : threads) t.join();
  queue_.reset();
  EXPECT_EQ(done, 20);
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(Committed(100 + i));
}

}  // namespace
}  // namespace sweepd::store
