// The sweepd binary: command line, port 0 with --port-file, gRPC on loopback, graceful
// SIGTERM, and a restart on the same database that keeps the sweeps.
#include <sys/wait.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sweepd/v1/sweepd.grpc.pb.h"
#include "tests/support/process.h"

namespace sweepd {
namespace {

using sweepd::testing::ChildProcess;
using sweepd::testing::MakeTempDir;
using sweepd::testing::ReadFile;
using sweepd::testing::RunCommand;
using sweepd::testing::WaitUntil;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const std::string kSweepd = std::string(SWEEPD_BIN_DIR) + "/sweepd";

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

// sweepd on a free port of the loopback interface.
struct Running {
  Running(const std::string& dir, const std::string& db) : port_file(dir + "/addr") {
    std::filesystem::remove(port_file);
    process = std::make_unique<ChildProcess>(
        std::vector<std::string>{kSweepd, "--db", db, "--listen", "127.0.0.1:0", "--port-file", port_file},
        dir + "/sweepd.log");
    EXPECT_TRUE(WaitUntil([&] { return !ReadFile(port_file).empty(); }, 30s)) << ReadFile(dir + "/sweepd.log");
    address = Trim(ReadFile(port_file));
    stub = v1::SweepService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }
  std::string port_file;
  std::string address;
  std::unique_ptr<ChildProcess> process;
  std::unique_ptr<v1::SweepService::Stub> stub;
};

TEST(SweepdBinary, HelpAndVersion) {
  std::string out;
  EXPECT_EQ(RunCommand({kSweepd, "--help"}, &out), 0);
  EXPECT_THAT(out, HasSubstr("--db"));
  EXPECT_THAT(out, HasSubstr("--port-file"));
  EXPECT_EQ(RunCommand({kSweepd, "--version"}, &out), 0);
  EXPECT_THAT(out, HasSubstr("sweepd "));
}

TEST(SweepdBinary, BadArgumentsExitNonZeroWithAMessage) {
  std::string out;
  int status = RunCommand({kSweepd, "--listen", "127.0.0.1:0"}, &out);  // --db is missing
  EXPECT_NE(status, 0);
  EXPECT_THAT(out, HasSubstr("--db"));
  status = RunCommand({kSweepd, "--db", "/tmp/x.db", "--lease-seconds", "zero"}, &out);
  EXPECT_NE(status, 0);
  status = RunCommand({kSweepd, "--db", "/nonexistent-dir/sub/sweepd.db", "--listen", "127.0.0.1:0"}, &out);
  EXPECT_NE(status, 0);
  EXPECT_THAT(out, HasSubstr("cannot open database"));
}

TEST(SweepdBinary, ServesStopsOnSigtermAndKeepsSweepsAcrossRestart) {
  const std::string dir = MakeTempDir("sweepd-binary-");
  const std::string db = dir + "/sweepd.db";
  std::ifstream in(std::string(SWEEPD_SOURCE_DIR) + "/sweeps/demo-cpu.yaml");
  std::stringstream spec;
  spec << in.rdbuf();
  {
    Running sweepd(dir, db);
    ASSERT_FALSE(sweepd.address.empty());
    grpc::ClientContext ctx;
    v1::SubmitSweepRequest req;
    req.set_spec_yaml(spec.str());
    req.set_spec_path("sweeps/demo-cpu.yaml");
    v1::SubmitSweepResponse resp;
    grpc::Status s = sweepd.stub->SubmitSweep(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_TRUE(resp.accepted());
    EXPECT_EQ(resp.jobs_new(), 5);
    const int status = sweepd.process->Stop();
    EXPECT_TRUE(WIFEXITED(status)) << ReadFile(dir + "/sweepd.log");
    EXPECT_EQ(WEXITSTATUS(status), 0) << ReadFile(dir + "/sweepd.log");
  }
  {
    Running again(dir, db);
    grpc::ClientContext ctx;
    v1::GetSweepRequest req;
    req.set_sweep("demo");
    v1::GetSweepResponse resp;
    grpc::Status s = again.stub->GetSweep(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.summary().total_jobs(), 5);
    EXPECT_EQ(resp.spec_yaml(), spec.str());
    again.process->Signal(SIGINT);
    const int status = again.process->Wait(30s);
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sweepd
