// The sweep-worker binary: its command line, device probe and SIGTERM drain, against
// RecordingCoordinator on loopback.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "tests/agent/recording_coordinator.h"
#include "tests/agent/running_binary.h"
#include "tests/agent/trainer_script.h"
#include "worker/agent/child_process.h"

namespace sweepd::agent {
namespace {

namespace fs = std::filesystem;
namespace pb = ::sweepd::v1;
using testing::CoordinatorState;

const fs::path kWorker = fs::path(SWEEPD_BIN_DIR) / "sweep-worker";
const fs::path kData = fs::path(SWEEPD_SOURCE_DIR) / "tests/agent/data";

// A running sweep-worker whose output is collected until it exits.
class WorkerProcess : public testing::RunningBinary {
 public:
  explicit WorkerProcess(std::vector<std::string> args)
      : RunningBinary(kWorker.string(), std::move(args)) {}
};

TEST(SweepWorkerBinaryTest, VersionAndHelp) {
  WorkerProcess version({"--version"});
  EXPECT_EQ(version.Wait().exit_code, 0);
  EXPECT_NE(version.output().find("sweep-worker "), std::string::npos);
  WorkerProcess help({"--help"});
  EXPECT_EQ(help.Wait().exit_code, 0);
  EXPECT_NE(help.output().find("--coordinator"), std::string::npos);
}

TEST(SweepWorkerBinaryTest, BadArgumentsFailWithAMessage) {
  const auto dir = testing::MakeTempDir();
  const auto trainer = testing::WriteTrainerScript(dir, {});
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{}, "--coordinator"},
      {{"--coordinator", "127.0.0.1:1", "--trainer", "/nonexistent/sweep-train"}, "does not exist"},
      {{"--coordinator", "127.0.0.1:1", "--trainer", trainer.string(), "--label", "novalue"},
       "key=value"},
      {{"--coordinator", "127.0.0.1:1", "--slots", "0"}, "--slots"},
  };
  for (const auto& c : cases) {
    WorkerProcess w(c.args);
    const ExitStatus s = w.Wait();
    EXPECT_NE(s.exit_code, 0) << w.output();
    EXPECT_NE(w.output().find(c.says), std::string::npos) << w.output();
  }
  fs::remove_all(dir);
}

TEST(SweepWorkerBinaryTest, RegistersProbedGpusAndDrainsOnSigterm) {
  testing::RecordingCoordinator coordinator;
  coordinator.Start();
  coordinator.AddJob("j1", R"({"train":{"steps":100000}})", 1);
  const auto dir = testing::MakeTempDir();
  const auto trainer = testing::WriteTrainerScript(
      dir,
      {{"FAKE_PROBE_FILE", (kData / "probe_two_gpus.json").string()}, {"FAKE_STEP_SLEEP", "0.05"}});
  WorkerProcess worker({"--coordinator", coordinator.address(), "--trainer", trainer.string(),
                        "--workdir", (dir / "work").string(), "--label", "site=lab",
                        "--drain-timeout", "0.2", "--kill-grace", "1"});
  ASSERT_TRUE(coordinator.WaitFor([](CoordinatorState& s) {
    auto it = s.attempts.find("j1-a1");
    return it != s.attempts.end() && it->second.stored.size() >= 3;
  })) << worker.output();
  worker.Signal(SIGTERM);
  const ExitStatus exit = worker.Wait();
  EXPECT_EQ(exit.exit_code, 0) << worker.output();
  coordinator.With([](CoordinatorState& s) {
    ASSERT_FALSE(s.registrations.empty());
    const auto& reg = s.registrations.front();
    ASSERT_EQ(reg.slots_size(), 2);
    EXPECT_EQ(reg.slots(1).device_kind(), "cuda");
    EXPECT_EQ(reg.slots(1).device_name(), "NVIDIA H100 80GB HBM3");
    EXPECT_EQ(reg.slots(1).compute_capability(), "9.0");
    EXPECT_EQ(reg.labels().at("site"), "lab");
    const auto& a = s.attempts.at("j1-a1");
    ASSERT_TRUE(a.finish.has_value());
    EXPECT_EQ(a.finish->outcome(), pb::OUTCOME_HANDED_BACK);
    EXPECT_EQ(a.finish->last_metric_seq(), static_cast<int64_t>(a.stored.size()));
    EXPECT_TRUE(s.heartbeats.back().draining());
  });
  fs::remove_all(dir);
}

TEST(SweepWorkerBinaryTest, FailingProbeFallsBackToOneCpuSlot) {
  testing::RecordingCoordinator coordinator;
  coordinator.Start();
  const auto dir = testing::MakeTempDir();
  const auto trainer = testing::WriteTrainerScript(dir, {{"FAKE_PROBE_EXIT", "1"}});
  WorkerProcess worker({"--coordinator", coordinator.address(), "--trainer", trainer.string(),
                        "--workdir", (dir / "work").string()});
  ASSERT_TRUE(coordinator.WaitFor([](CoordinatorState& s) { return !s.registrations.empty(); }));
  worker.Signal(SIGINT);
  EXPECT_EQ(worker.Wait().exit_code, 0);
  EXPECT_NE(worker.output().find("CPU slots only"), std::string::npos);
  coordinator.With([](CoordinatorState& s) {
    ASSERT_EQ(s.registrations.front().slots_size(), 1);
    EXPECT_EQ(s.registrations.front().slots(0).device_kind(), "cpu");
  });
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sweepd::agent
