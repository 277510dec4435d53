// The agent in-process against RecordingCoordinator (a real gRPC server on loopback) and
// the fake trainer script (a real subprocess).
#include "worker/agent/agent.h"

#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "tests/agent/recording_coordinator.h"
#include "tests/agent/trainer_script.h"

namespace sweepd::agent {
namespace {

namespace fs = std::filesystem;
namespace pb = ::sweepd::v1;
using std::chrono::milliseconds;
using testing::AttemptRecord;
using testing::CoordinatorState;
using testing::RecordingCoordinator;

constexpr char kJob[] = R"({"job_id":"j1","train":{"steps":6}})";

SlotInfo CpuSlot(int index = 0) { return {index, {"cpu", 0, "cpu", 0, ""}}; }

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    coordinator_.Start();
    dir_ = testing::MakeTempDir();
    options_.hostname = "node1";
    options_.version = "test";
    options_.labels = {{"pool", "test"}};
    options_.attempt.workdir = dir_ / "work";
    options_.attempt.kill_grace = milliseconds(500);
    options_.drain_timeout = std::chrono::seconds(60);
    options_.report_timeout = std::chrono::seconds(10);
    options_.backoff = {milliseconds(20), milliseconds(300), 2.0};
    options_.stream.backoff = options_.backoff;
  }

  void TearDown() override {
    if (agent_) {
      agent_->HandBackNow();
      thread_.join();
    }
    fs::remove_all(dir_);
  }

  void StartAgent(const std::map<std::string, std::string>& trainer_env,
                  std::vector<SlotInfo> slots = {CpuSlot()}) {
    options_.attempt.trainer = testing::WriteTrainerScript(dir_, trainer_env).string();
    client_ = std::make_unique<CoordinatorClient>(
        MakeCoordinatorChannel(coordinator_.address(), grpc::InsecureChannelCredentials()),
        std::chrono::seconds(5));
    agent_ = std::make_unique<Agent>(options_, std::move(slots), *client_);
    thread_ = std::thread([this] { exit_code_ = agent_->Run(); });
  }

  // Drains the agent and returns Run's result.
  int DrainAgent() {
    agent_->Drain();
    thread_.join();
    agent_.reset();
    return exit_code_;
  }

  bool WaitJobFinished(const std::string& job_id) {
    return WaitUntil([&] { return coordinator_.JobFinished(job_id); });
  }

  static bool WaitUntil(const std::function<bool()>& pred) {
    // A hang guard only; no test depends on how long anything takes.
    for (int i = 0; i < 6000; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return false;
  }

  fs::path JobDir(const std::string& job_id) { return options_.attempt.workdir / "jobs" / job_id; }

  RecordingCoordinator coordinator_;
  fs::path dir_;
  AgentOptions options_;
  std::unique_ptr<CoordinatorClient> client_;
  std::unique_ptr<Agent> agent_;
  std::thread thread_;
  int exit_code_ = -1;
};

// Every stored line of an attempt, parsed.
std::vector<nlohmann::json> Parsed(const AttemptRecord& a) {
  std::vector<nlohmann::json> out;
  for (const auto& s : a.stored) out.push_back(nlohmann::json::parse(s));
  return out;
}

std::vector<int64_t> StepsOf(const AttemptRecord& a) {
  std::vector<int64_t> steps;
  for (const auto& j : Parsed(a)) {
    if (j["type"] == "step") steps.push_back(j["step"].get<int64_t>());
  }
  return steps;
}

TEST_F(AgentTest, SucceededJobStreamsEveryMetricInOrder) {
  coordinator_.AddJob("j1", kJob);
  StartAgent({});
  ASSERT_TRUE(WaitJobFinished("j1"));
  EXPECT_EQ(DrainAgent(), 0);

  coordinator_.With([](CoordinatorState& s) {
    ASSERT_FALSE(s.registrations.empty());
    const auto& reg = s.registrations.front();
    EXPECT_EQ(reg.hostname(), "node1");
    ASSERT_EQ(reg.slots_size(), 1);
    EXPECT_EQ(reg.slots(0).device_kind(), "cpu");
    EXPECT_EQ(reg.labels().at("pool"), "test");
    ASSERT_FALSE(s.heartbeats.empty());
    EXPECT_TRUE(s.heartbeats.back().draining());
  });
  const auto attempts = coordinator_.AttemptsOf("j1");
  ASSERT_EQ(attempts.size(), 1u);
  const AttemptRecord& a = attempts[0];
  EXPECT_TRUE(a.started);
  EXPECT_FALSE(a.gap);
  ASSERT_TRUE(a.finish.has_value());
  EXPECT_EQ(a.finish->outcome(), pb::OUTCOME_SUCCEEDED);
  EXPECT_EQ(a.finish->exit_code(), 0);
  EXPECT_EQ(a.finish->last_metric_seq(), static_cast<int64_t>(a.stored.size()));
  EXPECT_EQ(StepsOf(a), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(nlohmann::json::parse(a.finish->result_json())["type"], "final");
  EXPECT_NE(a.finish->stderr_tail().find("fake_trainer: run"), std::string::npos);

  // The job's folder holds what the trainer was given and what it printed.
  const fs::path job_dir = JobDir("j1");
  std::ifstream job_json(job_dir / "job.json");
  std::string written;
  std::getline(job_json, written);
  EXPECT_EQ(written, kJob);
  auto spool = ReadSpoolFile(job_dir / "attempt-1.metrics.jsonl");
  ASSERT_TRUE(spool.ok());
  ASSERT_EQ(spool->size(), a.stored.size());
  for (size_t i = 0; i < a.stored.size(); ++i) EXPECT_EQ((*spool)[i].json, a.stored[i]);
  EXPECT_TRUE(fs::exists(job_dir / "attempt-1.stderr.log"));
}

struct EndCase {
  const char* name;
  std::map<std::string, std::string> env;
  pb::Outcome outcome;
  int exit_code;
  int signal;
};

class AgentOutcomeTest : public AgentTest, public ::testing::WithParamInterface<EndCase> {};

TEST_P(AgentOutcomeTest, ClassifiesHowTheTrainerEnded) {
  coordinator_.AddJob("j1", kJob);
  StartAgent(GetParam().env);
  ASSERT_TRUE(WaitJobFinished("j1"));
  const auto attempts = coordinator_.AttemptsOf("j1");
  ASSERT_EQ(attempts.size(), 1u);
  const auto& finish = *attempts[0].finish;
  EXPECT_EQ(finish.outcome(), GetParam().outcome) << pb::Outcome_Name(finish.outcome());
  EXPECT_EQ(finish.exit_code(), GetParam().exit_code);
  EXPECT_EQ(finish.signal(), GetParam().signal);
  // The lines printed before the failure are stored all the same.
  EXPECT_EQ(finish.last_metric_seq(), static_cast<int64_t>(attempts[0].stored.size()));
  EXPECT_GT(finish.last_metric_seq(), 0);
  if (GetParam().env.count("FAKE_STDERR") > 0) {
    EXPECT_NE(finish.stderr_tail().find(GetParam().env.at("FAKE_STDERR")), std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Ends, AgentOutcomeTest,
    ::testing::Values(
        EndCase{"NonFiniteExit3",
                {{"FAKE_FAIL_AT_STEP", "2"}, {"FAKE_EXIT", "3"}},
                pb::OUTCOME_NON_FINITE_LOSS,
                3,
                0},
        EndCase{"OutOfMemoryExit4",
                {{"FAKE_FAIL_AT_STEP", "2"}, {"FAKE_EXIT", "4"}},
                pb::OUTCOME_OUT_OF_MEMORY,
                4,
                0},
        EndCase{"CudaOomOnStderr",
                {{"FAKE_FAIL_AT_STEP", "2"},
                 {"FAKE_EXIT", "1"},
                 {"FAKE_STDERR", "RuntimeError: CUDA out of memory. Tried to allocate 20.00 GiB"}},
                pb::OUTCOME_OUT_OF_MEMORY,
                1,
                0},
        EndCase{
            "BadAllocAbort",
            {{"FAKE_FAIL_AT_STEP", "2"},
             {"FAKE_SIGNAL", "ABRT"},
             {"FAKE_STDERR", "terminate called after throwing an instance of 'std::bad_alloc'"}},
            pb::OUTCOME_OUT_OF_MEMORY,
            -1,
            SIGABRT},
        EndCase{"Segfault",
                {{"FAKE_FAIL_AT_STEP", "2"}, {"FAKE_SIGNAL", "SEGV"}},
                pb::OUTCOME_CRASHED,
                -1,
                SIGSEGV},
        EndCase{"InvalidConfigExit2",
                {{"FAKE_FAIL_AT_STEP", "1"}, {"FAKE_EXIT", "2"}},
                pb::OUTCOME_INVALID_CONFIG,
                2,
                0},
        EndCase{"ExitZeroWithoutFinalLine", {{"FAKE_NO_FINAL", "1"}}, pb::OUTCOME_CRASHED, 0, 0}),
    [](const ::testing::TestParamInfo<EndCase>& info) { return std::string(info.param.name); });

TEST_F(AgentTest, CancelFromSweepdStopsTheTrainer) {
  coordinator_.AddJob("j1", kJob);
  StartAgent({{"FAKE_STEPS", "100000"}, {"FAKE_STEP_SLEEP", "0.05"}});
  ASSERT_TRUE(coordinator_.WaitFor([](CoordinatorState& s) {
    auto it = s.attempts.find("j1-a1");
    return it != s.attempts.end() && it->second.stored.size() >= 3;
  }));
  coordinator_.With([](CoordinatorState& s) { s.attempts["j1-a1"].cancel = true; });
  ASSERT_TRUE(WaitJobFinished("j1"));
  const auto a = coordinator_.AttemptsOf("j1").at(0);
  EXPECT_EQ(a.finish->outcome(), pb::OUTCOME_CANCELLED);
  EXPECT_EQ(a.finish->signal(), SIGTERM);
}

TEST_F(AgentTest, TimeoutKillsATrainerThatIgnoresSigterm) {
  options_.attempt.timeout = milliseconds(300);
  coordinator_.AddJob("j1", kJob);
  StartAgent({{"FAKE_STEPS", "100000"}, {"FAKE_STEP_SLEEP", "0.05"}, {"FAKE_IGNORE_TERM", "1"}});
  ASSERT_TRUE(WaitJobFinished("j1"));
  const auto a = coordinator_.AttemptsOf("j1").at(0);
  EXPECT_EQ(a.finish->outcome(), pb::OUTCOME_TIMED_OUT);
  EXPECT_EQ(a.finish->signal(), SIGKILL);
  pid_t pid = 0;
  std::ifstream(JobDir("j1") / "trainer.pid") >> pid;
  ASSERT_GT(pid, 0);
  EXPECT_NE(kill(pid, 0), 0);  // reaped, not a zombie
}

TEST_F(AgentTest, CoordinatorOutageLosesNoMetric) {
  coordinator_.AddJob("j1", kJob);
  StartAgent({{"FAKE_STEPS", "80"}, {"FAKE_STEP_SLEEP", "0.03"}});
  ASSERT_TRUE(coordinator_.WaitFor([](CoordinatorState& s) {
    auto it = s.attempts.find("j1-a1");
    return it != s.attempts.end() && it->second.stored.size() >= 5;
  }));
  coordinator_.Stop();
  // The trainer goes on printing into the spool while nobody listens.
  const fs::path spool = JobDir("j1") / "attempt-1.metrics.jsonl";
  ASSERT_TRUE(WaitUntil([&] {
    auto points = ReadSpoolFile(spool);
    return points.ok() && points->size() >= 30;
  }));
  coordinator_.Start();
  ASSERT_TRUE(WaitJobFinished("j1"));
  const auto a = coordinator_.AttemptsOf("j1").at(0);
  EXPECT_EQ(a.finish->outcome(), pb::OUTCOME_SUCCEEDED);
  EXPECT_FALSE(a.gap);
  std::vector<int64_t> expected;
  for (int64_t k = 1; k <= 80; ++k) expected.push_back(k);
  EXPECT_EQ(StepsOf(a), expected);
  auto spooled = ReadSpoolFile(spool);
  ASSERT_TRUE(spooled.ok());
  ASSERT_EQ(spooled->size(), a.stored.size());
  EXPECT_EQ(a.finish->last_metric_seq(), static_cast<int64_t>(a.stored.size()));
}

TEST_F(AgentTest, MetricsAreBatchedAndHeldBackWhileSweepdLagsBehind) {
  options_.stream.batch_size = 3;
  options_.stream.window = 8;
  coordinator_.With([](CoordinatorState& s) { s.hold_acks = true; });
  coordinator_.AddJob("j1", kJob);
  StartAgent({{"FAKE_STEPS", "40"}, {"FAKE_STEP_SLEEP", "0"}, {"FAKE_CKPT_EVERY", "0"}});
  // With acks withheld the worker sends one window's worth and waits; the trainer is not
  // slowed down, its lines pile up in the spool.
  ASSERT_TRUE(coordinator_.WaitFor([](CoordinatorState& s) {
    auto it = s.attempts.find("j1-a1");
    return it != s.attempts.end() && it->second.stored.size() >= 8;
  }));
  ASSERT_TRUE(WaitUntil([&] {
    auto points = ReadSpoolFile(JobDir("j1") / "attempt-1.metrics.jsonl");
    return points.ok() && points->size() == 42;  // start, 40 steps, final
  }));
  coordinator_.With([](CoordinatorState& s) {
    EXPECT_EQ(s.attempts["j1-a1"].stored.size(), 8u);
    s.hold_acks = false;
  });
  ASSERT_TRUE(WaitJobFinished("j1"));
  const auto a = coordinator_.AttemptsOf("j1").at(0);
  EXPECT_EQ(a.stored.size(), 42u);
  EXPECT_LE(a.max_unacked, 8);
  EXPECT_LE(a.max_batch, 3);
  EXPECT_EQ(a.duplicates, 0);
  EXPECT_EQ(a.finish->outcome(), pb::OUTCOME_SUCCEEDED);
}

TEST_F(AgentTest, StreamWithoutAcksIsAbandonedAndRedone) {
  options_.stream.ack_timeout = milliseconds(300);
  coordinator_.With([](CoordinatorState& s) { s.hold_acks = true; });
  coordinator_.AddJob("j1", kJob);
  StartAgent({{"FAKE_STEPS", "20"}, {"FAKE_STEP_SLEEP", "0"}});
  // A sweepd that takes points but never answers looks like a dead peer.
  ASSERT_TRUE(coordinator_.WaitFor([](CoordinatorState& s) { return s.streams_opened >= 2; }));
  coordinator_.With([](CoordinatorState& s) { s.hold_acks = false; });
  ASSERT_TRUE(WaitJobFinished("j1"));
  const auto a = coordinator_.AttemptsOf("j1").at(0);
  EXPECT_EQ(a.finish->outcome(), pb::OUTCOME_SUCCEEDED);
  EXPECT_FALSE(a.gap);
  EXPECT_EQ(a.finish->last_metric_seq(), static_cast<int64_t>(a.stored.size()));
  std::vector<int64_t> expected;
  for (int64_t k = 1; k <= 20; ++k) expected.push_back(k);
  EXPECT_EQ(StepsOf(a), expected);
}

TEST_F(AgentTest, RetriedAttemptResumesFromCheckpoint) {
  coordinator_.AddJob("j1", kJob, /*max_attempts=*/2);
  StartAgent({{"FAKE_STEPS", "8"},
              {"FAKE_CKPT_EVERY", "2"},
              {"FAKE_FAIL_AT_STEP", "5"},
              {"FAKE_SIGNAL", "KILL"},
              {"FAKE_FAIL_ONCE", (dir_ / "failed-once").string()}});
  ASSERT_TRUE(WaitJobFinished("j1"));
  const auto attempts = coordinator_.AttemptsOf("j1");
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].finish->outcome(), pb::OUTCOME_CRASHED);
  EXPECT_EQ(attempts[0].finish->signal(), SIGKILL);
  EXPECT_EQ(StepsOf(attempts[0]), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(attempts[1].finish->outcome(), pb::OUTCOME_SUCCEEDED);
  const auto final_line = nlohmann::json::parse(attempts[1].finish->result_json());
  EXPECT_EQ(final_line["resumed_from"], 4);
  EXPECT_EQ(StepsOf(attempts[1]), (std::vector<int64_t>{5, 6, 7, 8}));
}

TEST_F(AgentTest, SharedArtifactsFolderHoldsTheCheckpoints) {
  options_.attempt.artifacts = dir_ / "shared";
  coordinator_.AddJob("j1", kJob);
  StartAgent({{"FAKE_STEPS", "4"}, {"FAKE_CKPT_EVERY", "2"}});
  ASSERT_TRUE(WaitJobFinished("j1"));
  EXPECT_TRUE(fs::exists(dir_ / "shared" / "j1" / "checkpoints" / "step-4"));
  EXPECT_TRUE(fs::is_symlink(JobDir("j1") / "checkpoints"));
}

TEST_F(AgentTest, ResumesFromACheckpointAnotherNodeLeftInTheArtifactsFolder) {
  options_.attempt.artifacts = dir_ / "shared";
  fs::create_directories(dir_ / "shared" / "j1" / "checkpoints");
  std::ofstream(dir_ / "shared" / "j1" / "checkpoints" / "latest") << "4\n";
  coordinator_.AddJob("j1", kJob);
  StartAgent({{"FAKE_STEPS", "6"}});
  ASSERT_TRUE(WaitJobFinished("j1"));
  const auto a = coordinator_.AttemptsOf("j1").at(0);
  EXPECT_EQ(a.finish->outcome(), pb::OUTCOME_SUCCEEDED);
  EXPECT_EQ(StepsOf(a), (std::vector<int64_t>{5, 6}));
}

TEST_F(AgentTest, DrainHandsBackARunningJob) {
  options_.drain_timeout = milliseconds(200);
  coordinator_.AddJob("j1", kJob);
  StartAgent({{"FAKE_STEPS", "100000"}, {"FAKE_STEP_SLEEP", "0.05"}});
  ASSERT_TRUE(coordinator_.WaitFor([](CoordinatorState& s) {
    auto it = s.attempts.find("j1-a1");
    return it != s.attempts.end() && it->second.stored.size() >= 3;
  }));
  EXPECT_EQ(DrainAgent(), 0);
  const auto a = coordinator_.AttemptsOf("j1").at(0);
  ASSERT_TRUE(a.finish.has_value());
  EXPECT_EQ(a.finish->outcome(), pb::OUTCOME_HANDED_BACK);
  EXPECT_EQ(a.finish->last_metric_seq(), static_cast<int64_t>(a.stored.size()));
  coordinator_.With([](CoordinatorState& s) {
    EXPECT_EQ(s.queue.size(), 1u);  // back in the queue for another worker
    EXPECT_TRUE(s.heartbeats.back().draining());
  });
}

TEST_F(AgentTest, TrainerKilledByTheDrainingSigtermIsHandedBack) {
  coordinator_.AddJob("j1", kJob, /*max_attempts=*/1);
  StartAgent({{"FAKE_STEPS", "100000"}, {"FAKE_STEP_SLEEP", "0.05"}});
  ASSERT_TRUE(coordinator_.WaitFor([](CoordinatorState& s) {
    auto it = s.attempts.find("j1-a1");
    return it != s.attempts.end() && it->second.stored.size() >= 3;
  }));
  // As under `scancel` or a pod deletion: the worker and its trainer get SIGTERM together.
  pid_t pid = 0;
  std::ifstream(JobDir("j1") / "trainer.pid") >> pid;
  ASSERT_GT(pid, 0);
  agent_->Drain();
  kill(pid, SIGTERM);
  EXPECT_EQ(DrainAgent(), 0);
  const auto a = coordinator_.AttemptsOf("j1").at(0);
  ASSERT_TRUE(a.finish.has_value());
  EXPECT_EQ(a.finish->outcome(), pb::OUTCOME_HANDED_BACK);
  EXPECT_EQ(a.finish->signal(), SIGTERM);
}

TEST_F(AgentTest, DrainLetsAShortJobFinish) {
  coordinator_.AddJob("j1", kJob);
  StartAgent({{"FAKE_STEPS", "20"}, {"FAKE_STEP_SLEEP", "0.05"}});
  ASSERT_TRUE(coordinator_.WaitFor([](CoordinatorState& s) {
    auto it = s.attempts.find("j1-a1");
    return it != s.attempts.end() && it->second.started;
  }));
  EXPECT_EQ(DrainAgent(), 0);
  const auto a = coordinator_.AttemptsOf("j1").at(0);
  EXPECT_EQ(a.finish->outcome(), pb::OUTCOME_SUCCEEDED);
}

TEST_F(AgentTest, LostLeaseStopsTheTrainerWithoutAReport) {
  coordinator_.AddJob("j1", kJob);
  StartAgent({{"FAKE_STEPS", "100000"}, {"FAKE_STEP_SLEEP", "0.05"}});
  ASSERT_TRUE(coordinator_.WaitFor([](CoordinatorState& s) {
    auto it = s.attempts.find("j1-a1");
    return it != s.attempts.end() && it->second.stored.size() >= 3;
  }));
  coordinator_.With([](CoordinatorState& s) { s.attempts["j1-a1"].lost = true; });
  pid_t pid = 0;
  std::ifstream(JobDir("j1") / "trainer.pid") >> pid;
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(WaitUntil([&] { return kill(pid, 0) != 0; }));
  EXPECT_EQ(DrainAgent(), 0);
  EXPECT_FALSE(coordinator_.AttemptsOf("j1").at(0).finish.has_value());
}

TEST_F(AgentTest, EachGpuSlotRunsItsJobOnItsOwnDevice) {
  coordinator_.AddJob("ja", kJob);
  coordinator_.AddJob("jb", kJob);
  std::vector<SlotInfo> gpus = {{0, {"cuda", 0, "H100", 80LL << 30, "9.0"}},
                                {1, {"cuda", 1, "H100", 80LL << 30, "9.0"}}};
  // Long enough that both slots are busy at once, so each job lands on its own slot.
  StartAgent({{"FAKE_STEPS", "10"}, {"FAKE_STEP_SLEEP", "0.1"}}, gpus);
  ASSERT_TRUE(WaitJobFinished("ja"));
  ASSERT_TRUE(WaitJobFinished("jb"));
  std::set<std::string> devices;
  for (const char* job : {"ja", "jb"}) {
    const auto a = coordinator_.AttemptsOf(job).at(0);
    EXPECT_EQ(a.finish->outcome(), pb::OUTCOME_SUCCEEDED);
    devices.insert(Parsed(a).at(0)["cuda_visible_devices"].get<std::string>());
  }
  EXPECT_EQ(devices, (std::set<std::string>{"0", "1"}));
}

TEST_F(AgentTest, JobAcrossTwoGpusHoldsBothSlotsUntilItEnds) {
  // Three GPU slots; a job across two of them, then two one-GPU jobs.
  coordinator_.AddJob("pair", R"({"job_id":"pair","devices":2,"train":{"steps":6}})");
  coordinator_.AddJob("one-a", kJob);
  coordinator_.AddJob("one-b", kJob);
  std::vector<SlotInfo> gpus;
  for (int i = 0; i < 3; ++i) gpus.push_back({i, {"cuda", i, "H200", 140LL << 30, "9.0"}});
  StartAgent({{"FAKE_STEPS", "10"}, {"FAKE_STEP_SLEEP", "0.1"}}, gpus);
  for (const char* job : {"pair", "one-a", "one-b"}) ASSERT_TRUE(WaitJobFinished(job)) << job;

  const AttemptRecord pair = coordinator_.AttemptsOf("pair").at(0);
  EXPECT_EQ(pair.finish->outcome(), pb::OUTCOME_SUCCEEDED);
  const std::string pair_devices = Parsed(pair).at(0)["cuda_visible_devices"].get<std::string>();
  ASSERT_EQ(pair_devices.size(), 3u) << pair_devices;  // "i,j": two distinct devices
  EXPECT_NE(pair_devices[0], pair_devices[2]);
  // While the pair ran, one slot was left: the one-GPU jobs ran one after the other on the
  // device the pair did not hold.
  const AttemptRecord a = coordinator_.AttemptsOf("one-a").at(0);
  const AttemptRecord b = coordinator_.AttemptsOf("one-b").at(0);
  const std::string da = Parsed(a).at(0)["cuda_visible_devices"].get<std::string>();
  const std::string db = Parsed(b).at(0)["cuda_visible_devices"].get<std::string>();
  for (const std::string& d : {da, db}) {
    const bool overlapped_pair = d == pair_devices.substr(0, 1) || d == pair_devices.substr(2, 1);
    if (overlapped_pair) {
      // Only after the pair ended may a one-GPU job use one of its devices.
      const AttemptRecord& job = d == da ? a : b;
      EXPECT_GE(job.leased_at, pair.finished_at) << d;
    }
  }
  // The pair was leased by a slot that offered all three devices.
  coordinator_.With([](testing::CoordinatorState& s) {
    EXPECT_NE(std::find(s.lease_free_devices.begin(), s.lease_free_devices.end(), 3), s.lease_free_devices.end());
  });
}

TEST(SlotClaimsTest, ReserveClaimAndRelease) {
  std::vector<SlotInfo> slots;
  for (int i = 0; i < 4; ++i) slots.push_back({i, {"cuda", i, "H200", 0, ""}});
  slots.push_back({4, {"cpu", 0, "cpu", 0, ""}});
  SlotClaims claims(slots);
  EXPECT_EQ(claims.Reserve(1), 4);  // every idle CUDA slot, not the CPU one
  EXPECT_FALSE(claims.Available(0));
  EXPECT_TRUE(claims.Available(4));
  const std::vector<SlotInfo> group = claims.Claim(1, 2);
  ASSERT_EQ(group.size(), 2u);
  EXPECT_EQ(group[0].index, 1);  // the leasing slot first, then the lowest free index
  EXPECT_EQ(group[1].index, 0);
  EXPECT_TRUE(claims.Available(2));
  EXPECT_TRUE(claims.Available(3));
  EXPECT_EQ(claims.Reserve(2), 2);  // 2 and 3 are what is left
  EXPECT_TRUE(claims.Claim(2, 3).empty());  // more than was reserved: nothing but itself kept
  EXPECT_TRUE(claims.Available(3));
  claims.Release(2);
  claims.Release(1);
  EXPECT_EQ(claims.Reserve(3), 4);
  EXPECT_EQ(GroupEnvironment(group, "", "").at("CUDA_VISIBLE_DEVICES"), "1,0");
  // A launcher's restriction maps the slots' indices (device i is the i-th visible one).
  EXPECT_EQ(GroupEnvironment(group, "4,5,6,7", "").at("CUDA_VISIBLE_DEVICES"), "5,4");
  EXPECT_EQ(JobDevices(R"({"devices":3})"), 3);
  EXPECT_EQ(JobDevices(R"({"train":{}})"), 1);
  EXPECT_EQ(JobDevices("not json"), 1);
}

}  // namespace
}  // namespace sweepd::agent
