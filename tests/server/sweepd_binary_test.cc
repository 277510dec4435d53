// The sweepd binary: command line, port 0 with --port-file, gRPC on loopback, graceful
// SIGTERM, and a restart on the same database that keeps the sweeps.
#include <sys/wait.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sweepd/v1/sweepd.grpc.pb.h"
#include "tests/support/final_line.h"
#include "tests/support/process.h"

namespace sweepd {
namespace {

using sweepd::testing::ChildProcess;
using sweepd::testing::MakeTempDir;
using sweepd::testing::ReadFile;
using sweepd::testing::RunCommand;
using sweepd::testing::WaitForPortFile;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const std::string kSweepd = std::string(SWEEPD_BIN_DIR) + "/sweepd";

// sweepd on a free port of the loopback interface.
struct Running {
  Running(const std::string& dir, const std::string& db) : port_file(dir + "/addr") {
    std::filesystem::remove(port_file);
    process = std::make_unique<ChildProcess>(
        std::vector<std::string>{kSweepd, "--db", db, "--listen", "127.0.0.1:0", "--port-file", port_file},
        dir + "/sweepd.log");
    address = WaitForPortFile(port_file, 30s);
    EXPECT_FALSE(address.empty()) << ReadFile(dir + "/sweepd.log");
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

TEST(SweepdBinary, SigkillThenRestartContinuesTheLeasedJob) {
  const std::string dir = MakeTempDir("sweepd-kill-");
  const std::string db = dir + "/sweepd.db";
  std::ifstream in(std::string(SWEEPD_SOURCE_DIR) + "/tests/server/specs/urgent.yaml");
  std::stringstream spec;
  spec << in.rdbuf();
  std::string worker_id, attempt_id;
  int64_t token = 0;
  {
    Running first(dir, db);
    grpc::ClientContext submit_ctx;
    v1::SubmitSweepRequest submit;
    submit.set_spec_yaml(spec.str());
    v1::SubmitSweepResponse submitted;
    ASSERT_TRUE(first.stub->SubmitSweep(&submit_ctx, submit, &submitted).ok());
    ASSERT_TRUE(submitted.accepted());
    auto workers = v1::WorkerService::NewStub(grpc::CreateChannel(first.address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext reg_ctx;
    v1::RegisterRequest reg;
    reg.set_hostname("node1");
    v1::RegisterResponse registered;
    ASSERT_TRUE(workers->Register(&reg_ctx, reg, &registered).ok());
    worker_id = registered.worker_id();
    grpc::ClientContext lease_ctx;
    v1::LeaseJobRequest lease_req;
    lease_req.set_worker_id(worker_id);
    lease_req.set_device_kind("cpu");
    v1::LeaseJobResponse lease;
    ASSERT_TRUE(workers->LeaseJob(&lease_ctx, lease_req, &lease).ok());
    ASSERT_TRUE(lease.granted());
    attempt_id = lease.attempt_id();
    token = lease.fencing_token();
    first.process->Signal(SIGKILL);
    first.process->Wait(10s);
  }
  Running second(dir, db);
  auto workers = v1::WorkerService::NewStub(grpc::CreateChannel(second.address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext hb_ctx;
  v1::HeartbeatRequest hb;
  hb.set_worker_id(worker_id);
  auto* running = hb.add_running();
  running->set_attempt_id(attempt_id);
  running->set_fencing_token(token);
  v1::HeartbeatResponse hb_resp;
  ASSERT_TRUE(workers->Heartbeat(&hb_ctx, hb, &hb_resp).ok());
  EXPECT_FALSE(hb_resp.reregister());
  EXPECT_EQ(hb_resp.lost_attempts_size(), 0);

  grpc::ClientContext finish_ctx;
  v1::FinishAttemptRequest finish;
  finish.set_attempt_id(attempt_id);
  finish.set_fencing_token(token);
  finish.set_outcome(v1::OUTCOME_SUCCEEDED);
  finish.set_result_json(
      testing::CompleteFinalLine({{"kind", "train"}, {"final_loss", 1.0}, {"scores", nlohmann::json::object()}})
          .dump());
  v1::FinishAttemptResponse finished;
  ASSERT_TRUE(workers->FinishAttempt(&finish_ctx, finish, &finished).ok());
  EXPECT_TRUE(finished.accepted()) << finished.message();

  grpc::ClientContext get_ctx;
  v1::GetSweepRequest get;
  get.set_sweep("urgent");
  v1::GetSweepResponse sweep;
  ASSERT_TRUE(second.stub->GetSweep(&get_ctx, get, &sweep).ok());
  ASSERT_EQ(sweep.jobs_size(), 1);
  EXPECT_EQ(sweep.jobs(0).state(), v1::JOB_STATE_SUCCEEDED);
  second.process->Stop();
  std::filesystem::remove_all(dir);
}

// sweepd refuses a database it cannot write before it serves: it never says "serving" and
// then fails every write. A 0444 file and a read-only folder (modes checked even for root,
// who could write them anyway), and a new database in a read-only folder.
TEST(SweepdBinary, ReadOnlyDatabaseOrFolderIsRefusedBeforeServing) {
  namespace fs = std::filesystem;
  const std::string dir = MakeTempDir("sweepd-binary-");
  const std::string folder = dir + "/state";
  fs::create_directory(folder);
  const std::string db = folder + "/sweepd.db";
  {
    Running sweepd(dir, db);  // a real database, made and closed by sweepd
    ASSERT_FALSE(sweepd.address.empty());
    ASSERT_EQ(WEXITSTATUS(sweepd.process->Stop()), 0);
  }
  const auto db_bytes = fs::file_size(db);
  const bool had_wal = fs::exists(db + "-wal");
  auto refused = [&](const std::string& path, const std::string& names) {
    const std::string port_file = dir + "/addr";
    fs::remove(port_file);
    std::string out;
    const int status =
        RunCommand({kSweepd, "--db", path, "--listen", "127.0.0.1:0", "--port-file", port_file}, &out, 30s);
    EXPECT_NE(status, 0) << out;
    EXPECT_THAT(out, HasSubstr(names));
    EXPECT_THAT(out, HasSubstr("writable"));
    EXPECT_THAT(out, ::testing::Not(HasSubstr("serving")));
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;  // one line
    EXPECT_FALSE(fs::exists(port_file));
  };
  fs::permissions(db, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  refused(db, db + " has mode 0444");
  fs::permissions(db, fs::perms::owner_read | fs::perms::owner_write);
  fs::permissions(folder, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                              fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  refused(db, "the folder " + folder + " of database " + db + " has mode 0555");
  refused(folder + "/new.db", "the folder " + folder);
  EXPECT_FALSE(fs::exists(folder + "/new.db"));
  EXPECT_EQ(fs::exists(db + "-wal"), had_wal);
  EXPECT_EQ(fs::file_size(db), db_bytes);  // nothing written
  fs::permissions(folder, fs::perms::owner_all);
  {
    Running sweepd(dir, db);  // writable again: serves on the same database
    EXPECT_FALSE(sweepd.address.empty());
    EXPECT_EQ(WEXITSTATUS(sweepd.process->Stop()), 0);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sweepd
