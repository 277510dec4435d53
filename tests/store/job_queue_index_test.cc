// The in-memory queue behind LeaseJob: the order the store documents (priority, fair
// share, age, grid order), capability matching and backoff.
#include "store/job_queue_index.h"

#include <gtest/gtest.h>

namespace sweepd::store {
namespace {

IndexedJob Job(int64_t rowid, const std::string& sweep, const std::string& state = "queued") {
  IndexedJob j;
  j.rowid = rowid;
  j.job_id = "job" + std::to_string(rowid);
  j.state = state;
  j.created_ms = 1000;
  j.device_kind = "cpu";
  j.sweeps = {sweep};
  return j;
}

TEST(JobQueueIndexTest, PicksInGridOrderInsideASweep) {
  JobQueueIndex index;
  index.PutSweep({"a", 0, 1, false});
  for (int64_t r : {3, 1, 2}) index.PutJob(Job(r, "a"));
  EXPECT_EQ(index.Pick("cpu", 0, 5000), 1);
  IndexedJob leased = Job(1, "a", "leased");
  index.PutJob(leased);
  EXPECT_EQ(index.Pick("cpu", 0, 5000), 2);
}

TEST(JobQueueIndexTest, HigherPrioritySweepFirstThenFewestRunningThenOldest) {
  JobQueueIndex index;
  index.PutSweep({"old", 0, 1, false});
  index.PutSweep({"new", 0, 2, false});
  index.PutJob(Job(1, "old"));
  index.PutJob(Job(2, "old"));
  index.PutJob(Job(3, "new"));
  index.PutJob(Job(4, "new"));
  EXPECT_EQ(index.Pick("cpu", 0, 5000), 1);  // equal: the oldest sweep
  index.PutJob(Job(1, "old", "running"));
  EXPECT_EQ(index.Pick("cpu", 0, 5000), 3);  // fair share: "new" runs nothing
  index.PutSweep({"urgent", 5, 3, false});
  index.PutJob(Job(5, "urgent"));
  EXPECT_EQ(index.Pick("cpu", 0, 5000), 5);
  index.PutSweep({"urgent", 5, 3, true});  // cancelled: skipped
  EXPECT_EQ(index.Pick("cpu", 0, 5000), 3);
}

TEST(JobQueueIndexTest, OnlySlotsThatCanRunTheJob) {
  JobQueueIndex index;
  index.PutSweep({"a", 0, 1, false});
  IndexedJob big = Job(1, "a");
  big.device_kind = "cuda";
  big.memory_bytes = 40;
  index.PutJob(big);
  EXPECT_FALSE(index.Pick("cpu", 0, 5000).has_value());
  EXPECT_FALSE(index.Pick("cuda", 24, 5000).has_value());
  EXPECT_EQ(index.Pick("cuda", 80, 5000), 1);
  EXPECT_EQ(index.Pick("cuda", 0, 5000), 1);  // unknown free memory: any
}

TEST(JobQueueIndexTest, BackedOffJobWaitsAndItsTimeIsTheNextEligible) {
  JobQueueIndex index;
  index.PutSweep({"a", 0, 1, false});
  IndexedJob waiting = Job(1, "a");
  waiting.not_before_ms = 9000;
  index.PutJob(waiting);
  EXPECT_FALSE(index.Pick("cpu", 0, 5000).has_value());
  EXPECT_EQ(index.NextEligibleMs("cpu", 0, 5000), 9000);
  EXPECT_EQ(index.NextEligibleMs("cuda", 0, 5000), 0);
  EXPECT_EQ(index.Pick("cpu", 0, 9000), 1);
  // A caller whose clock is behind does not get it.
  EXPECT_FALSE(index.Pick("cpu", 0, 8000).has_value());
}

TEST(JobQueueIndexTest, TerminalJobsLeaveAndJobsOfTwoSweepsCountInBoth) {
  JobQueueIndex index;
  index.PutSweep({"a", 0, 1, false});
  index.PutSweep({"b", 0, 2, false});
  IndexedJob shared = Job(1, "a");
  shared.sweeps = {"b", "a"};
  index.PutJob(shared);
  index.PutJob(Job(2, "b"));
  shared.state = "running";
  index.PutJob(shared);
  index.PutJob(Job(3, "a"));
  // Both sweeps run one job; "a" is older.
  EXPECT_EQ(index.Pick("cpu", 0, 5000), 3);
  shared.state = "succeeded";
  index.PutJob(shared);
  EXPECT_EQ(index.Find(1), nullptr);
  EXPECT_EQ(index.Jobs().size(), 2u);
}

}  // namespace
}  // namespace sweepd::store
