#include "worker/agent/child_process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/agent/trainer_script.h"

namespace sweepd::agent {
namespace {

struct Output {
  std::vector<std::string> out, err;
  ExitStatus exit;
};

Output RunToEnd(const ChildSpec& spec) {
  auto child = ChildProcess::Spawn(spec);
  EXPECT_TRUE(child.ok()) << child.status().message();
  Output o;
  std::thread err(
      [&] { ReadLines((*child)->stderr_fd(), [&](const std::string& l) { o.err.push_back(l); }); });
  ReadLines((*child)->stdout_fd(), [&](const std::string& l) { o.out.push_back(l); });
  o.exit = (*child)->Wait();
  err.join();
  return o;
}

TEST(ChildProcessTest, SeparatesStdoutAndStderrAndReportsExitCode) {
  const Output o =
      RunToEnd({"/bin/sh", {"-c", "echo one; echo two >&2; printf three; exit 7"}, "", {}});
  EXPECT_EQ(o.out, (std::vector<std::string>{"one", "three"}));
  EXPECT_EQ(o.err, (std::vector<std::string>{"two"}));
  EXPECT_EQ(o.exit.exit_code, 7);
  EXPECT_EQ(o.exit.signal, 0);
}

TEST(ChildProcessTest, ReportsTheKillingSignal) {
  const Output o = RunToEnd({"/bin/sh", {"-c", "kill -SEGV $$"}, "", {}});
  EXPECT_EQ(o.exit.signal, SIGSEGV);
  EXPECT_EQ(o.exit.exit_code, -1);
}

TEST(ChildProcessTest, RunsInItsFolderWithTheGivenEnvironment) {
  const auto dir = testing::MakeTempDir();
  const Output o = RunToEnd({"/bin/sh",
                             {"-c", "pwd; echo $SWEEP_TEST_VAR"},
                             dir.string(),
                             {{"SWEEP_TEST_VAR", "hello"}}});
  ASSERT_EQ(o.out.size(), 2u);
  EXPECT_EQ(std::filesystem::canonical(o.out[0]), std::filesystem::canonical(dir));
  EXPECT_EQ(o.out[1], "hello");
  std::filesystem::remove_all(dir);
}

TEST(ChildProcessTest, MissingProgramIsAnError) {
  auto child = ChildProcess::Spawn({"/nonexistent/sweep-train", {}, "", {}});
  EXPECT_FALSE(child.ok());
}

TEST(ChildProcessTest, SignalGroupReachesGrandchildrenAndWaitLeavesNone) {
  // The child starts a grandchild that would outlive it; both must die with the group.
  const auto dir = testing::MakeTempDir();
  const auto pid_file = dir / "grandchild.pid";
  auto child = ChildProcess::Spawn(
      {"/bin/sh",
       {"-c", "sleep 300 & echo $! > " + pid_file.string() + "; echo ready; wait"},
       "",
       {}});
  ASSERT_TRUE(child.ok());
  bool ready = false;
  std::thread reader([&] {
    ReadLines((*child)->stdout_fd(), [&](const std::string& l) { ready = ready || l == "ready"; });
  });
  while (!std::filesystem::exists(pid_file) || std::filesystem::file_size(pid_file) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_t grandchild = 0;
  std::ifstream(pid_file) >> grandchild;
  ASSERT_GT(grandchild, 0);
  (*child)->SignalGroup(SIGTERM);
  const ExitStatus exit = (*child)->Wait();
  reader.join();
  EXPECT_TRUE(ready);
  EXPECT_EQ(exit.signal, SIGTERM);
  // The grandchild is gone (it was reparented, so it may linger a moment as init's zombie).
  for (int i = 0; i < 500 && kill(grandchild, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(kill(grandchild, 0), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sweepd::agent
