// The store on real SQLite files: every job transition, fencing, metrics exactly once,
// retries with backoff, cancellation, capability matching, restart. Time is passed in,
// so no test sleeps.
#include "store/store.h"

#include <algorithm>
#include <filesystem>
#include <future>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "spec/sweep_spec.h"
#include "tests/support/final_line.h"
#include "tests/support/process.h"
#include "tests/support/store_sync.h"

namespace sweepd::store {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;
using sweepd::testing::FinishAttempt;
using sweepd::testing::Heartbeat;
using sweepd::testing::LeaseJob;
using sweepd::testing::MarkStarted;
using sweepd::testing::RegisterWorker;
using sweepd::testing::StoreMetrics;

constexpr int64_t kT0 = 1'700'000'000'000;
constexpr int64_t kLease = 60'000;

spec::ExpandedSweep LoadSpec(const std::string& path) {
  spec::SpecResult r = spec::ParseSweepSpecFile(path);
  EXPECT_TRUE(r.ok()) << (r.problems.empty() ? "" : spec::FormatProblem(r.problems[0]));
  return r.sweep;
}

spec::ExpandedSweep Demo() { return LoadSpec(std::string(SWEEPD_SOURCE_DIR) + "/sweeps/demo-cpu.yaml"); }
spec::ExpandedSweep ServerSpec(const std::string& name) {
  return LoadSpec(std::string(SWEEPD_SOURCE_DIR) + "/tests/server/specs/" + name);
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = sweepd::testing::MakeTempDir("sweepd-store-");
    path_ = dir_ + "/sweepd.db";
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    auto s = Store::Open(path_, kT0);
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::move(*s);
  }
  std::string AddWorker(const std::string& host = "node1") {
    WorkerRecord w;
    w.hostname = host;
    w.slots.push_back({0, "cpu", "cpu", 0, ""});
    auto id = RegisterWorker(*store_, w, kT0);
    EXPECT_TRUE(id.ok());
    return *id;
  }
  std::optional<Lease> LeaseAt(const std::string& worker, int64_t now, const std::string& device = "cpu",
                               int64_t free_memory = 0) {
    auto lease = LeaseJob(*store_, {worker, 0, device, free_memory}, now, kLease);
    EXPECT_TRUE(lease.ok()) << lease.status().message();
    return lease.ok() ? *lease : std::nullopt;
  }
  JobState StateOf(const std::string& job_id) {
    auto job = store_->GetJob(job_id);
    EXPECT_TRUE(job.ok());
    return job->state;
  }
  // Streams one final line and finishes the attempt as succeeded.
  void Succeed(const Lease& lease, const json& fields, int64_t now) {
    const json final_line = testing::CompleteFinalLine(fields);
    auto through = StoreMetrics(*store_, lease.attempt_id, lease.fencing_token, {{1, final_line.dump()}}, now);
    ASSERT_TRUE(through.ok()) << through.status().message();
    FinishReport r;
    r.attempt_id = lease.attempt_id;
    r.fencing_token = lease.fencing_token;
    r.outcome = Outcome::kSucceeded;
    r.result_json = final_line.dump();
    r.last_metric_seq = 1;
    Status s = FinishAttempt(*store_, r, {}, now);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  Status Fail(const Lease& lease, Outcome outcome, int64_t now) {
    FinishReport r;
    r.attempt_id = lease.attempt_id;
    r.fencing_token = lease.fencing_token;
    r.outcome = outcome;
    r.exit_code = 1;
    r.stderr_tail = "loading\nRuntimeError: boom\n";
    return FinishAttempt(*store_, r, backoff_, now);
  }

  std::string dir_, path_;
  std::unique_ptr<Store> store_;
  BackoffPolicy backoff_{1000, 60000};
};

TEST_F(StoreTest, NewSweepQueuesBaseEvalAndBlocksTrainJobs) {
  spec::ExpandedSweep demo = Demo();
  auto added = store_->AddSweep(demo, kT0);
  ASSERT_TRUE(added.ok()) << added.status().message();
  EXPECT_EQ(added->jobs_new, 5);
  EXPECT_EQ(added->jobs_reused, 0);
  auto jobs = store_->SweepJobs("demo");
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 5u);
  EXPECT_EQ((*jobs)[0].kind, "base_eval");
  EXPECT_EQ((*jobs)[0].state, JobState::kQueued);
  for (size_t i = 1; i < jobs->size(); ++i) {
    EXPECT_EQ((*jobs)[i].state, JobState::kBlocked);
    EXPECT_EQ((*jobs)[i].depends_on, std::vector<std::string>{(*jobs)[0].job_id});
  }
  auto sweep = store_->GetSweep("demo");
  ASSERT_TRUE(sweep.ok());
  EXPECT_EQ(sweep->total_jobs, 5);
  EXPECT_FALSE(sweep->finished());
}

TEST_F(StoreTest, SameSpecAgainChangesNothingAndOtherSpecUnderSameNameIsRefused) {
  spec::ExpandedSweep demo = Demo();
  ASSERT_TRUE(store_->AddSweep(demo, kT0).ok());
  auto again = store_->AddSweep(demo, kT0 + 1);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->jobs_new, 0);
  EXPECT_EQ(again->jobs_reused, 5);
  spec::ExpandedSweep other = demo;
  other.spec_yaml += "\n# changed\n";
  auto refused = store_->AddSweep(other, kT0 + 2);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kAlreadyExists);
}

TEST_F(StoreTest, OverlappingSweepReusesJobs) {
  spec::ExpandedSweep demo = Demo();
  ASSERT_TRUE(store_->AddSweep(demo, kT0).ok());
  spec::ExpandedSweep copy = demo;
  copy.name = "demo-copy";
  auto added = store_->AddSweep(copy, kT0 + 1);
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->jobs_new, 0);
  EXPECT_EQ(added->jobs_reused, 5);
  EXPECT_EQ(store_->SweepJobs("demo-copy")->size(), 5u);
}

TEST_F(StoreTest, BaseEvalSuccessUnblocksTrainJobsAndTheirLeasesCarryBaseScores) {
  ASSERT_TRUE(store_->AddSweep(Demo(), kT0).ok());
  const std::string worker = AddWorker();
  auto base = LeaseAt(worker, kT0 + 10);
  ASSERT_TRUE(base.has_value());
  EXPECT_EQ(base->job.kind, "base_eval");
  EXPECT_EQ(base->attempt_number, 1);
  EXPECT_EQ(StateOf(base->job.job_id), JobState::kLeased);
  // Nothing else can run until the base evaluation succeeded.
  EXPECT_FALSE(LeaseAt(worker, kT0 + 11).has_value());

  ASSERT_TRUE(MarkStarted(*store_, base->attempt_id, base->fencing_token, kT0 + 20).ok());
  EXPECT_EQ(StateOf(base->job.job_id), JobState::kRunning);
  const json scores = {{"gsm8k", 12.5}, {"arc_challenge", 30.0}};
  Succeed(*base, {{"type", "final"}, {"kind", "base_eval"}, {"scores", scores}, {"base_fingerprint", "0123456789abcdef"}},
          kT0 + 30);
  EXPECT_EQ(StateOf(base->job.job_id), JobState::kSucceeded);

  auto train = LeaseAt(worker, kT0 + 40);
  ASSERT_TRUE(train.has_value());
  EXPECT_EQ(train->job.kind, "train");
  EXPECT_GT(train->fencing_token, base->fencing_token);
  const json config = json::parse(train->job.config_json);
  EXPECT_EQ(config.at("base_scores"), scores);
  EXPECT_EQ(config.at("base_fingerprint"), "0123456789abcdef");
  auto results = store_->QueryResults("demo");
  ASSERT_TRUE(results.ok());
  ASSERT_EQ(results->size(), 1u);
  EXPECT_EQ(json::parse((*results)[0].result_json).at("scores"), scores);
}

TEST_F(StoreTest, ExpiredLeaseRequeuesJobAndRefusesTheLateResult) {
  ASSERT_TRUE(store_->AddSweep(ServerSpec("urgent.yaml"), kT0).ok());
  const std::string worker = AddWorker();
  auto first = LeaseAt(worker, kT0);
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(MarkStarted(*store_, first->attempt_id, first->fencing_token, kT0 + 1).ok());

  // Not yet expired: nothing happens.
  auto none = store_->ExpireLeases(backoff_, kT0 + kLease - 1);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto expired = store_->ExpireLeases(backoff_, kT0 + kLease + 1);
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, std::vector<std::string>{first->attempt_id});
  auto job = store_->GetJob(first->job.job_id);
  EXPECT_EQ(job->state, JobState::kQueued);
  EXPECT_EQ(job->last_outcome, OutcomeName(Outcome::kLeaseExpired));

  // The job is leased again (after its backoff) with a newer token.
  EXPECT_FALSE(LeaseAt(worker, kT0 + kLease + 2).has_value());
  auto second = LeaseAt(worker, kT0 + kLease + 1 + backoff_.DelayAfter(1));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->attempt_number, 2);
  EXPECT_GT(second->fencing_token, first->fencing_token);

  // The first worker comes back: its metrics, heartbeat and result are all refused.
  auto late_metrics = StoreMetrics(*store_, first->attempt_id, first->fencing_token,
                                           {{1, R"({"type":"step","step":1})"}}, kT0 + 2 * kLease);
  EXPECT_EQ(late_metrics.status().code(), StatusCode::kFailedPrecondition);
  auto hb = Heartbeat(*store_, {worker, {{first->attempt_id, first->fencing_token}}, false}, kT0 + 2 * kLease, kLease);
  ASSERT_TRUE(hb.ok());
  EXPECT_EQ(hb->lost_attempts, std::vector<std::string>{first->attempt_id});
  FinishReport late;
  late.attempt_id = first->attempt_id;
  late.fencing_token = first->fencing_token;
  late.outcome = Outcome::kSucceeded;
  late.result_json = R"({"type":"final","final_loss":1.0})";
  Status s = FinishAttempt(*store_, late, backoff_, kT0 + 2 * kLease);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(StateOf(first->job.job_id), JobState::kLeased);
  EXPECT_TRUE(store_->QueryResults("urgent")->empty());

  // A forged token on the live attempt is refused too.
  late.attempt_id = second->attempt_id;
  late.fencing_token = first->fencing_token;
  EXPECT_EQ(FinishAttempt(*store_, late, backoff_, kT0 + 2 * kLease).code(), StatusCode::kFailedPrecondition);
}

TEST_F(StoreTest, HeartbeatExtendsTheLease) {
  ASSERT_TRUE(store_->AddSweep(ServerSpec("urgent.yaml"), kT0).ok());
  const std::string worker = AddWorker();
  auto lease = LeaseAt(worker, kT0);
  ASSERT_TRUE(lease.has_value());
  auto hb = Heartbeat(*store_, {worker, {{lease->attempt_id, lease->fencing_token}}, false}, kT0 + kLease - 10, kLease);
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->lost_attempts.empty());
  EXPECT_EQ(hb->lease_expires_ms, kT0 + 2 * kLease - 10);
  EXPECT_TRUE(store_->ExpireLeases(backoff_, kT0 + kLease + 10)->empty());
  EXPECT_EQ(store_->ExpireLeases(backoff_, kT0 + 2 * kLease)->size(), 1u);
}

TEST_F(StoreTest, MetricPointsAreStoredExactlyOnceAndAckedContiguously) {
  ASSERT_TRUE(store_->AddSweep(ServerSpec("urgent.yaml"), kT0).ok());
  const std::string worker = AddWorker();
  auto lease = LeaseAt(worker, kT0);
  ASSERT_TRUE(lease.has_value());
  auto point = [](int step) { return json{{"type", "step"}, {"step", step}, {"loss", 1.0}}.dump(); };
  auto through = StoreMetrics(*store_, lease->attempt_id, lease->fencing_token,
                                      {{1, point(1)}, {2, point(2)}, {4, point(4)}}, kT0 + 1);
  ASSERT_TRUE(through.ok());
  EXPECT_EQ(through->stored_through, 2);  // 3 is missing
  EXPECT_EQ(through->job_id, lease->job.job_id);
  // Metrics prove the trainer started.
  EXPECT_EQ(StateOf(lease->job.job_id), JobState::kRunning);

  // Finishing before every point is stored is refused as retryable.
  FinishReport early;
  early.attempt_id = lease->attempt_id;
  early.fencing_token = lease->fencing_token;
  early.outcome = Outcome::kSucceeded;
  early.result_json = testing::CompleteFinalLine(json::object()).dump();
  early.last_metric_seq = 4;
  EXPECT_EQ(FinishAttempt(*store_, early, backoff_, kT0 + 2).code(), StatusCode::kUnavailable);

  through = StoreMetrics(*store_, lease->attempt_id, lease->fencing_token, {{2, point(2)}, {3, point(3)}}, kT0 + 3);
  ASSERT_TRUE(through.ok());
  EXPECT_EQ(through->stored_through, 4);
  auto log = store_->GetJobLog(lease->job.job_id, 0);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->points.size(), 4u);  // the resent 2 is not stored twice
  for (int i = 0; i < 4; ++i) EXPECT_EQ(log->points[i].seq, i + 1);
  EXPECT_EQ(store_->GetJobLog(lease->job.job_id, 2)->points.size(), 2u);
  EXPECT_TRUE(FinishAttempt(*store_, early, backoff_, kT0 + 4).ok());
  EXPECT_EQ(StateOf(lease->job.job_id), JobState::kSucceeded);
  // The same finish again (its reply was lost) is accepted and changes nothing.
  EXPECT_TRUE(FinishAttempt(*store_, early, backoff_, kT0 + 5).ok());
}

TEST_F(StoreTest, FailuresRetryWithBackoffThenFailForGoodAndFailTheirDependents) {
  ASSERT_TRUE(store_->AddSweep(Demo(), kT0).ok());  // max_attempts 3
  const std::string worker = AddWorker();
  int64_t now = kT0;
  std::string base_id;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto lease = LeaseAt(worker, now);
    ASSERT_TRUE(lease.has_value()) << "attempt " << attempt;
    EXPECT_EQ(lease->attempt_number, attempt);
    base_id = lease->job.job_id;
    ASSERT_TRUE(Fail(*lease, Outcome::kCrashed, now).ok());
    auto job = store_->GetJob(base_id);
    EXPECT_EQ(job->last_outcome, OutcomeName(Outcome::kCrashed));
    EXPECT_THAT(job->last_error, HasSubstr("RuntimeError: boom"));
    if (attempt < 3) {
      EXPECT_EQ(job->state, JobState::kQueued);
      EXPECT_EQ(job->not_before_ms, now + backoff_.DelayAfter(attempt));
      EXPECT_FALSE(LeaseAt(worker, now + 1).has_value()) << "backing off";
      now += backoff_.DelayAfter(attempt);
    }
  }
  EXPECT_EQ(StateOf(base_id), JobState::kFailed);
  auto jobs = store_->SweepJobs("demo");
  for (const JobRecord& j : *jobs) {
    EXPECT_EQ(j.state, JobState::kFailed) << j.job_id;
    if (j.kind == "train") {
      EXPECT_EQ(j.last_outcome, OutcomeName(Outcome::kDependencyFailed));
    }
  }
  EXPECT_TRUE(store_->GetSweep("demo")->finished());

  // Retrying the sweep gives every job a fresh budget; train jobs wait for the base again.
  auto requeued = store_->RetryJobs("demo", {}, now + 1);
  ASSERT_TRUE(requeued.ok());
  EXPECT_EQ(*requeued, 5);
  EXPECT_EQ(StateOf(base_id), JobState::kQueued);
  auto retried = store_->SweepJobs("demo");
  ASSERT_TRUE(retried.ok());
  for (const JobRecord& j : *retried) {
    if (j.kind == "train") {
      EXPECT_EQ(j.state, JobState::kBlocked);
    }
  }
  auto again = LeaseAt(worker, now + 2);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->attempt_number, 4);
}

TEST_F(StoreTest, InvalidConfigIsNotRetried) {
  ASSERT_TRUE(store_->AddSweep(ServerSpec("urgent.yaml"), kT0).ok());
  const std::string worker = AddWorker();
  auto lease = LeaseAt(worker, kT0);
  ASSERT_TRUE(lease.has_value());
  ASSERT_TRUE(Fail(*lease, Outcome::kInvalidConfig, kT0 + 1).ok());
  EXPECT_EQ(StateOf(lease->job.job_id), JobState::kFailed);
}

TEST_F(StoreTest, HandedBackJobIsRequeuedWithoutCountingAFailure) {
  ASSERT_TRUE(store_->AddSweep(ServerSpec("two-jobs.yaml"), kT0).ok());  // max_attempts 1
  const std::string worker = AddWorker();
  auto lease = LeaseAt(worker, kT0);
  ASSERT_TRUE(lease.has_value());
  ASSERT_TRUE(Fail(*lease, Outcome::kHandedBack, kT0 + 1).ok());
  EXPECT_EQ(StateOf(lease->job.job_id), JobState::kQueued);
  auto again = LeaseAt(worker, kT0 + 2);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->job.job_id, lease->job.job_id);
  ASSERT_TRUE(Fail(*again, Outcome::kOutOfMemory, kT0 + 3).ok());
  EXPECT_EQ(StateOf(lease->job.job_id), JobState::kFailed);  // one real failure of one allowed
}

TEST_F(StoreTest, CancelSweepCancelsWaitingJobsAndAsksWorkersToStopRunningOnes) {
  ASSERT_TRUE(store_->AddSweep(ServerSpec("two-jobs.yaml"), kT0).ok());
  const std::string worker = AddWorker();
  auto running = LeaseAt(worker, kT0);
  ASSERT_TRUE(running.has_value());
  auto n = store_->CancelSweep("two-jobs", kT0 + 1);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
  auto jobs = *store_->SweepJobs("two-jobs");
  for (const JobRecord& j : jobs) {
    if (j.job_id != running->job.job_id) {
      EXPECT_EQ(j.state, JobState::kCancelled);
    }
  }
  EXPECT_FALSE(LeaseAt(worker, kT0 + 2).has_value());
  auto hb = Heartbeat(*store_, {worker, {{running->attempt_id, running->fencing_token}}, false}, kT0 + 3, kLease);
  ASSERT_TRUE(hb.ok());
  EXPECT_EQ(hb->cancel_attempts, std::vector<std::string>{running->attempt_id});
  ASSERT_TRUE(Fail(*running, Outcome::kCancelled, kT0 + 4).ok());
  EXPECT_EQ(StateOf(running->job.job_id), JobState::kCancelled);
  EXPECT_TRUE(store_->GetSweep("two-jobs")->finished());
  EXPECT_TRUE(store_->GetSweep("two-jobs")->cancelled);
}

TEST_F(StoreTest, JobsGoOnlyToSlotsThatCanRunThem) {
  ASSERT_TRUE(store_->AddSweep(ServerSpec("cuda-40g.yaml"), kT0).ok());
  const std::string worker = AddWorker();
  const int64_t gib = int64_t{1} << 30;
  EXPECT_FALSE(LeaseAt(worker, kT0, "cpu").has_value());
  EXPECT_FALSE(LeaseAt(worker, kT0, "cuda", 24 * gib).has_value());
  auto lease = LeaseAt(worker, kT0, "cuda", 80 * gib);
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->job.device_kind, "cuda");
}

TEST_F(StoreTest, JobAcrossDevicesGoesOnlyToASlotThatOffersThatMany) {
  spec::ExpandedSweep sweep = ServerSpec("cuda-2gpu.yaml");
  for (auto& job : sweep.jobs) job.depends_on.clear();  // the train job alone, ready now
  sweep.jobs.erase(std::remove_if(sweep.jobs.begin(), sweep.jobs.end(),
                                  [](const spec::ExpandedJob& j) { return j.config.kind != "train"; }),
                   sweep.jobs.end());
  ASSERT_EQ(sweep.jobs.size(), 1u);
  ASSERT_EQ(sweep.jobs[0].config.devices, 2);
  ASSERT_TRUE(store_->AddSweep(sweep, kT0).ok());
  const std::string worker = AddWorker();
  auto lease_with = [&](int64_t free_devices) {
    LeaseRequest r{worker, 0, "cuda", 0, free_devices};
    auto lease = LeaseJob(*store_, r, kT0, kLease);
    EXPECT_TRUE(lease.ok()) << lease.status().message();
    return lease.ok() ? *lease : std::nullopt;
  };
  EXPECT_FALSE(lease_with(1).has_value());
  Reopen();  // the index is rebuilt from the database: the device count comes back with it
  EXPECT_FALSE(lease_with(1).has_value());
  auto lease = lease_with(2);
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(json::parse(lease->job.config_json)["devices"], 2);
}

TEST_F(StoreTest, HigherPrioritySweepIsServedFirst) {
  ASSERT_TRUE(store_->AddSweep(ServerSpec("two-jobs.yaml"), kT0).ok());
  ASSERT_TRUE(store_->AddSweep(ServerSpec("urgent.yaml"), kT0 + 1).ok());
  const std::string worker = AddWorker();
  auto lease = LeaseAt(worker, kT0 + 2);
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->job.seed, 7);  // urgent.yaml's only job
}

TEST_F(StoreTest, EqualPrioritySweepsShareTheWorkers) {
  ASSERT_TRUE(store_->AddSweep(ServerSpec("two-jobs.yaml"), kT0).ok());
  ASSERT_TRUE(store_->AddSweep(ServerSpec("two-more.yaml"), kT0 + 1).ok());
  const std::string worker = AddWorker();
  auto first = LeaseAt(worker, kT0 + 2);
  auto second = LeaseAt(worker, kT0 + 3);
  ASSERT_TRUE(first.has_value() && second.has_value());
  // The older sweep goes first; the next slot goes to the sweep with nothing running.
  EXPECT_EQ(first->job.sweep, "two-jobs");
  EXPECT_EQ(second->job.sweep, "two-more");
}

TEST_F(StoreTest, UnknownWorkerMustRegisterAgain) {
  ASSERT_TRUE(store_->AddSweep(ServerSpec("urgent.yaml"), kT0).ok());
  auto lease = LeaseJob(*store_, {"w-nobody", 0, "cpu", 0}, kT0, kLease);
  EXPECT_EQ(lease.status().code(), StatusCode::kNotFound);
  auto hb = Heartbeat(*store_, {"w-nobody", {{"a", 1}}, false}, kT0, kLease);
  ASSERT_TRUE(hb.ok());
  EXPECT_FALSE(hb->known_worker);
  EXPECT_EQ(hb->lost_attempts, std::vector<std::string>{"a"});
}

TEST_F(StoreTest, RestartKeepsSweepsJobsAndLeases) {
  ASSERT_TRUE(store_->AddSweep(Demo(), kT0).ok());
  const std::string worker = AddWorker();
  auto lease = LeaseAt(worker, kT0);
  ASSERT_TRUE(lease.has_value());
  Reopen();
  auto sweeps = store_->ListSweeps();
  ASSERT_TRUE(sweeps.ok());
  ASSERT_EQ(sweeps->size(), 1u);
  EXPECT_EQ((*sweeps)[0].name, "demo");
  EXPECT_EQ((*sweeps)[0].total_jobs, 5);
  EXPECT_EQ(StateOf(lease->job.job_id), JobState::kLeased);
  // The worker carries on with its lease after the restart.
  auto hb = Heartbeat(*store_, {worker, {{lease->attempt_id, lease->fencing_token}}, false}, kT0 + 5, kLease);
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->known_worker);
  EXPECT_TRUE(hb->lost_attempts.empty());
  auto workers = store_->ListWorkers();
  ASSERT_EQ(workers->size(), 1u);
  EXPECT_EQ((*workers)[0].running_jobs, std::vector<std::string>{lease->job.job_id});
}

TEST_F(StoreTest, SilentWorkersAreMarkedLost) {
  const std::string worker = AddWorker();
  ASSERT_TRUE(store_->MarkLostWorkers(kT0 + 1000, 5000).ok());
  EXPECT_EQ((*store_->ListWorkers())[0].state, "alive");
  ASSERT_TRUE(store_->MarkLostWorkers(kT0 + 10000, 5000).ok());
  EXPECT_EQ((*store_->ListWorkers())[0].state, "lost");
}

TEST_F(StoreTest, MigrationsAreRecordedOnce) {
  Reopen();
  Reopen();
  auto sweeps = store_->ListSweeps();
  EXPECT_TRUE(sweeps.ok());
}

TEST_F(StoreTest, QueueIndexAgreesWithTheDatabaseThroughEveryTransitionAndRestart) {
  ASSERT_TRUE(store_->AddSweep(Demo(), kT0).ok());
  ASSERT_TRUE(store_->AddSweep(ServerSpec("two-jobs.yaml"), kT0 + 1).ok());
  ASSERT_TRUE(store_->CheckQueueIndex().ok()) << store_->CheckQueueIndex().message();
  const std::string worker = AddWorker();
  auto a = LeaseAt(worker, kT0 + 2);
  auto b = LeaseAt(worker, kT0 + 3);
  auto c = LeaseAt(worker, kT0 + 4);
  ASSERT_TRUE(a && b && c);
  ASSERT_TRUE(MarkStarted(*store_, b->attempt_id, b->fencing_token, kT0 + 5).ok());
  ASSERT_TRUE(Fail(*b, Outcome::kOutOfMemory, kT0 + 6).ok());  // requeued with backoff
  Succeed(*a, {{"type", "final"}, {"kind", "base_eval"}, {"scores", {{"synthetic", 0.5}}}},
          kT0 + 7);
  EXPECT_TRUE(store_->CheckQueueIndex().ok()) << store_->CheckQueueIndex().message();
  ASSERT_TRUE(store_->CancelSweep("two-jobs", kT0 + 8).ok());
  EXPECT_TRUE(store_->CheckQueueIndex().ok()) << store_->CheckQueueIndex().message();
  ASSERT_TRUE(store_->RetryJobs("two-jobs", {}, kT0 + 9).ok());
  EXPECT_TRUE(store_->CheckQueueIndex().ok()) << store_->CheckQueueIndex().message();
  // A refused write (stale token) changes nothing, in the rows or the index.
  EXPECT_FALSE(MarkStarted(*store_, b->attempt_id, b->fencing_token, kT0 + 10).ok());
  auto expired = store_->ExpireLeases(backoff_, kT0 + 10 * kLease);
  ASSERT_TRUE(expired.ok());
  EXPECT_FALSE(expired->empty());
  EXPECT_TRUE(store_->CheckQueueIndex().ok()) << store_->CheckQueueIndex().message();

  // What the running store would lease next is what a restarted one leases.
  const int64_t later = kT0 + 100 * kLease;
  std::vector<std::string> before;
  {
    auto probe = LeaseAt(worker, later);
    ASSERT_TRUE(probe.has_value());
    before.push_back(probe->job.job_id);
  }
  Reopen();
  EXPECT_TRUE(store_->CheckQueueIndex().ok()) << store_->CheckQueueIndex().message();
  std::vector<std::string> after;
  while (auto lease = LeaseAt(worker, later + 1)) after.push_back(lease->job.job_id);
  ASSERT_FALSE(after.empty());
  EXPECT_NE(after[0], before[0]);  // the lease taken before the restart is kept
  EXPECT_EQ(std::set<std::string>(after.begin(), after.end()).count(before[0]), 0u);
  EXPECT_TRUE(store_->CheckQueueIndex().ok()) << store_->CheckQueueIndex().message();
}

TEST_F(StoreTest, ConcurrentLeasesGetDistinctJobsAndIncreasingTokens) {
  ASSERT_TRUE(store_->AddSweep(ServerSpec("two-jobs.yaml"), kT0).ok());
  ASSERT_TRUE(store_->AddSweep(ServerSpec("two-more.yaml"), kT0).ok());
  ASSERT_TRUE(store_->AddSweep(Demo(), kT0).ok());
  std::vector<std::string> workers;
  for (int i = 0; i < 16; ++i) workers.push_back(AddWorker("node" + std::to_string(i)));
  std::vector<std::optional<Lease>> leases(workers.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < workers.size(); ++i) {
    threads.emplace_back([&, i] {
      auto lease = LeaseJob(*store_, {workers[i], 0, "cpu", 0}, kT0 + 1, kLease);
      if (lease.ok()) leases[i] = *lease;
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> jobs;
  std::set<int64_t> tokens;
  for (const auto& lease : leases) {
    if (!lease) continue;
    EXPECT_TRUE(jobs.insert(lease->job.job_id).second) << "leased twice: " << lease->job.job_id;
    EXPECT_TRUE(tokens.insert(lease->fencing_token).second);
    EXPECT_EQ(StateOf(lease->job.job_id), JobState::kLeased);
  }
  // Every queued job that a cpu slot can run was handed out once (two-jobs, two-more, and
  // the demo's base evaluation; the demo's train jobs wait for it).
  EXPECT_EQ(jobs.size(), 5u);
  EXPECT_TRUE(store_->CheckQueueIndex().ok()) << store_->CheckQueueIndex().message();
}

TEST_F(StoreTest, AnsweredWritesSurviveAReopenWithoutAClose) {
  // Each write is committed before its call returns: a second store on the same file
  // (as after a SIGKILL and restart) sees all of them.
  ASSERT_TRUE(store_->AddSweep(ServerSpec("two-jobs.yaml"), kT0).ok());
  const std::string worker = AddWorker();
  auto lease = LeaseAt(worker, kT0 + 1);
  ASSERT_TRUE(lease.has_value());
  auto stored = StoreMetrics(*store_, lease->attempt_id, lease->fencing_token,
                                     {{1, R"({"type":"step","step":1})"}}, kT0 + 2);
  ASSERT_TRUE(stored.ok());
  auto second = Store::Open(path_, kT0 + 3);
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ((*second)->GetJob(lease->job.job_id)->state, JobState::kRunning);
  auto log = (*second)->GetJobLog(lease->job.job_id, 0);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->points.size(), 1u);
  EXPECT_TRUE((*second)->CheckQueueIndex().ok());
}

TEST_F(StoreTest, LargeMetricBatchesAreStoredOnceAndAckedUpToTheFirstGap) {
  ASSERT_TRUE(store_->AddSweep(ServerSpec("two-jobs.yaml"), kT0).ok());
  auto lease = LeaseAt(AddWorker(), kT0);
  ASSERT_TRUE(lease.has_value());
  auto points = [](int64_t from, int64_t to, int64_t skip) {
    std::vector<MetricPointIn> out;
    for (int64_t seq = from; seq <= to; ++seq) {
      if (seq != skip) out.push_back({seq, json{{"type", "step"}, {"step", seq}}.dump()});
    }
    return out;
  };
  // 1..37 without 30 (several rows per statement and single ones), then 20..70 again with 30.
  auto first =
      StoreMetrics(*store_, lease->attempt_id, lease->fencing_token, points(1, 37, 30), kT0);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->stored_through, 29);
  auto second =
      StoreMetrics(*store_, lease->attempt_id, lease->fencing_token, points(20, 70, 0), kT0 + 1);
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(second->stored_through, 70);
  auto log = store_->GetJobLog(lease->job.job_id, 0);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->points.size(), 70u);
  for (size_t i = 0; i < log->points.size(); ++i) {
    EXPECT_EQ(log->points[i].seq, static_cast<int64_t>(i) + 1);
  }
}

// A long job's log comes in pages of at most kJobLogPageBytes of JSON (a point larger than a page
// alone): read page after page from the last seq, every point once and in order.
TEST_F(StoreTest, JobLogComesInPagesThatTogetherHoldEveryPointOnce) {
  ASSERT_TRUE(store_->AddSweep(ServerSpec("two-jobs.yaml"), kT0).ok());
  auto lease = LeaseAt(AddWorker(), kT0);
  ASSERT_TRUE(lease.has_value());
  const std::string pad(100 * 1000, 'x');  // about 100 kB a point: a page holds about ten
  std::vector<MetricPointIn> in;
  for (int64_t seq = 1; seq <= 35; ++seq) {
    const std::string filler = seq == 20 ? std::string(kJobLogPageBytes + 5000, 'y') : pad;
    in.push_back({seq, json{{"type", "step"}, {"step", seq}, {"note", filler}}.dump()});
  }
  auto stored = StoreMetrics(*store_, lease->attempt_id, lease->fencing_token, in, kT0);
  ASSERT_TRUE(stored.ok()) << stored.status().message();
  ASSERT_EQ(stored->stored_through, 35);
  std::vector<int64_t> seqs;
  int pages = 0;
  for (int64_t after = 0;;) {
    auto page = store_->GetJobLog(lease->job.job_id, after);
    ASSERT_TRUE(page.ok()) << page.status().message();
    ASSERT_FALSE(page->points.empty());
    ++pages;
    size_t bytes = 0;
    for (const auto& p : page->points) bytes += p.json.size();
    // Within the page size, unless it is the one point larger than a page.
    EXPECT_TRUE(bytes <= kJobLogPageBytes || page->points.size() == 1u) << bytes;
    for (const auto& p : page->points) seqs.push_back(p.seq);
    after = page->points.back().seq;
    if (!page->more) break;
    ASSERT_LT(pages, 40);
  }
  EXPECT_GE(pages, 4);
  ASSERT_EQ(seqs.size(), 35u);
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], static_cast<int64_t>(i) + 1);
}

TEST_F(StoreTest, NoLeaseWhileBackingOffSaysWhenTheJobBecomesEligible) {
  ASSERT_TRUE(store_->AddSweep(ServerSpec("two-more.yaml"), kT0).ok());
  const std::string worker = AddWorker();
  auto a = LeaseAt(worker, kT0);
  auto b = LeaseAt(worker, kT0);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(Fail(*a, Outcome::kCrashed, kT0 + 10).ok());  // backoff_: 1 s after one failure
  std::promise<Result<LeaseOutcome>> done;
  store_->LeaseJobAsync({worker, 0, "cpu", 0}, kT0 + 20, kLease,
                        [&done](Result<LeaseOutcome> out) { done.set_value(std::move(out)); });
  Result<LeaseOutcome> out = done.get_future().get();
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_FALSE(out->lease.has_value());
  EXPECT_EQ(out->next_eligible_ms, kT0 + 10 + 1000);
  auto retried = LeaseAt(worker, kT0 + 10 + 1000);
  ASSERT_TRUE(retried.has_value());
  EXPECT_EQ(retried->job.job_id, a->job.job_id);
}

}  // namespace
}  // namespace sweepd::store
