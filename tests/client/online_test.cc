// sweepctl against the real sweepd on loopback (gRPC): submit, problems, list, status,
// empty results, cancel, watch ending on a cancelled sweep, retry, logs; then the same
// database file read offline once sweepd has stopped.
#include <sys/wait.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace sweepd::client {
namespace {

using sweepd::testing::ChildProcess;
using sweepd::testing::MakeTempDir;
using sweepd::testing::ReadFile;
using sweepd::testing::RunCommand;
using sweepd::testing::WaitForPortFile;
using namespace std::chrono_literals;

const std::string kBin = SWEEPD_BIN_DIR;
const std::string kSource = SWEEPD_SOURCE_DIR;

TEST(Online, EveryCommandAgainstARealCoordinator) {
  const std::string dir = MakeTempDir("sweepctl-online-");
  const std::string db = dir + "/sweepd.db";
  const std::string addr_file = dir + "/addr";
  ChildProcess sweepd({kBin + "/sweepd", "--db", db, "--listen", "127.0.0.1:0", "--port-file", addr_file},
                      dir + "/sweepd.log");
  const std::string addr = WaitForPortFile(addr_file, 30s);
  ASSERT_FALSE(addr.empty()) << ReadFile(dir + "/sweepd.log");
  auto ctl = [&](std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), {kBin + "/sweepctl", "--coordinator", addr});
    return RunCommand(args, out);
  };

  std::string out;
  ASSERT_EQ(ctl({"submit", kSource + "/sweeps/demo-cpu.yaml"}, &out), 0) << out;
  EXPECT_NE(out.find("submitted sweep 'demo'"), std::string::npos) << out;
  EXPECT_EQ(ctl({"submit", kSource + "/tests/client/fixtures/bad_spec.yaml"}, &out), 3) << out;
  EXPECT_NE(out.find("bad_spec.yaml:"), std::string::npos) << out;

  ASSERT_EQ(ctl({"list"}, &out), 0) << out;
  EXPECT_NE(out.find("demo"), std::string::npos) << out;
  ASSERT_EQ(ctl({"--output", "json", "status", "demo"}, &out), 0) << out;
  const auto status = nlohmann::json::parse(out);
  ASSERT_FALSE(status["jobs"].empty()) << out;
  const std::string job = status["jobs"][0]["job_id"];
  EXPECT_EQ(ctl({"status", "no-such-sweep"}, &out), 5) << out;

  ASSERT_EQ(ctl({"results", "demo", "--format", "csv"}, &out), 0) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "only the header before any job ran: " << out;
  ASSERT_EQ(ctl({"results", "--format", "csv"}, &out), 0) << "every sweep's results: " << out;
  ASSERT_EQ(ctl({"workers"}, &out), 0) << out;

  ASSERT_EQ(ctl({"cancel", "demo"}, &out), 0) << out;
  EXPECT_NE(out.find("cancelled"), std::string::npos) << out;
  EXPECT_EQ(ctl({"watch", "demo"}, &out), 6) << "a cancelled sweep ends the watch with status 6\n" << out;
  EXPECT_NE(out.find("sweep demo ended"), std::string::npos) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  ASSERT_EQ(ctl({"retry", "demo"}, &out), 0) << out;
  ASSERT_EQ(ctl({"logs", "--no-follow", job}, &out), 0) << out;
  EXPECT_NE(out.find("cancelled"), std::string::npos) << out;

  EXPECT_EQ(WEXITSTATUS(sweepd.Stop()), 0) << ReadFile(dir + "/sweepd.log");
  ASSERT_EQ(RunCommand({kBin + "/sweepctl", "--db", db, "status", "demo"}, &out), 0) << out;
  EXPECT_NE(out.find("cancelled"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sweepd::client
