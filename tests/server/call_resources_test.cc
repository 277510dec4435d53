// What a call holds on sweepd's side ends with the call: the real sweepd under a low
// RLIMIT_NOFILE (prlimit sets it before exec), hundreds of WatchSweep streams opened and
// dropped, the descriptors in /proc/PID/fd counted afterwards, and a new call served.
#include <sys/wait.h>

#include <filesystem>
#include <thread>

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
using sweepd::testing::WaitForPortFile;
using sweepd::testing::WaitUntil;
using namespace std::chrono_literals;

const std::string kSweepd = std::string(SWEEPD_BIN_DIR) + "/sweepd";
const std::string kPrlimit = "/usr/bin/prlimit";
const std::string kSpec = std::string(SWEEPD_SOURCE_DIR) + "/sweeps/demo-cpu.yaml";

// The descriptor limit sweepd runs under, and how many watches are open at once: with one
// read connection per watch (two descriptors each) the watches would pass the limit.
constexpr int kNoFile = 256;
constexpr int kWatches = 400;
constexpr int kChannels = 4;  // separate TCP connections the watches share

size_t OpenDescriptors(pid_t pid) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

std::shared_ptr<grpc::Channel> NewChannel(const std::string& address, int index) {
  grpc::ChannelArguments args;
  args.SetInt("sweepd.test.channel", index);  // distinct arguments: a connection of its own
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

grpc::Status ListSweeps(v1::SweepService::Stub& stub, v1::ListSweepsResponse* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  return stub.ListSweeps(&ctx, v1::ListSweepsRequest(), resp);
}

TEST(CallResources, DroppedWatchersReleaseTheirDescriptorsAndSweepdKeepsServing) {
  const std::string dir = MakeTempDir("sweepd-resources-");
  const std::string port_file = dir + "/addr";
  ChildProcess sweepd({kPrlimit, "--nofile=" + std::to_string(kNoFile) + ":" + std::to_string(kNoFile),
                       kSweepd, "--db", dir + "/sweepd.db", "--listen", "127.0.0.1:0", "--port-file",
                       port_file},
                      dir + "/sweepd.log");
  const std::string address = WaitForPortFile(port_file, 30s);
  ASSERT_FALSE(address.empty()) << ReadFile(dir + "/sweepd.log");
  auto stub = v1::SweepService::NewStub(NewChannel(address, -1));
  {
    grpc::ClientContext ctx;
    v1::SubmitSweepRequest req;
    req.set_spec_yaml(ReadFile(kSpec));
    req.set_spec_path(kSpec);
    v1::SubmitSweepResponse resp;
    ASSERT_TRUE(stub->SubmitSweep(&ctx, req, &resp).ok());
    ASSERT_TRUE(resp.accepted());
  }
  v1::ListSweepsResponse sweeps;
  ASSERT_TRUE(ListSweeps(*stub, &sweeps).ok());
  ASSERT_EQ(sweeps.sweeps_size(), 1);
  const std::string sweep = sweeps.sweeps(0).name();
  const size_t before = OpenDescriptors(sweepd.pid());

  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int c = 0; c < kChannels; ++c) channels.push_back(NewChannel(address, c));
  struct Watch {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<v1::SweepEvent>> reader;
  };
  std::vector<std::unique_ptr<Watch>> watches;
  std::vector<std::unique_ptr<v1::SweepService::Stub>> stubs;
  for (auto& channel : channels) stubs.push_back(v1::SweepService::NewStub(channel));
  size_t first_events = 0;
  for (int i = 0; i < kWatches; ++i) {
    auto w = std::make_unique<Watch>();
    w->ctx.set_deadline(std::chrono::system_clock::now() + 120s);
    v1::WatchSweepRequest req;
    req.set_sweep(sweep);
    w->reader = stubs[i % kChannels]->WatchSweep(&w->ctx, req);
    v1::SweepEvent event;
    if (w->reader->Read(&event)) ++first_events;  // the snapshot: the watch was served
    watches.push_back(std::move(w));
  }
  EXPECT_EQ(first_events, static_cast<size_t>(kWatches)) << ReadFile(dir + "/sweepd.log");
  const size_t during = OpenDescriptors(sweepd.pid());

  // The clients go: half cancel, half just disappear with their connections.
  for (size_t i = 0; i < watches.size(); i += 2) watches[i]->ctx.TryCancel();
  watches.clear();
  stubs.clear();
  channels.clear();
  // Each watch notices within one poll; the descriptors of its read must be gone by then.
  const size_t slack = 2 * 16 + 8;  // the pool's idle read connections and a few sockets
  EXPECT_TRUE(WaitUntil([&] { return OpenDescriptors(sweepd.pid()) <= before + slack; }, 20s))
      << "before " << before << ", with " << kWatches << " watches " << during << ", after "
      << OpenDescriptors(sweepd.pid());

  // A new client is still served.
  auto fresh = v1::SweepService::NewStub(NewChannel(address, kChannels + 1));
  EXPECT_TRUE(ListSweeps(*fresh, &sweeps).ok()) << ReadFile(dir + "/sweepd.log");
  EXPECT_EQ(sweeps.sweeps_size(), 1);
  EXPECT_THAT(ReadFile(dir + "/sweepd.log"), ::testing::Not(::testing::HasSubstr("Too many open files")));
  sweepd.Signal(SIGTERM);
  const int status = sweepd.Wait(20s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// Without --auth-file the limits hold per peer address: a flood from this machine's address
// is refused RESOURCE_EXHAUSTED (nothing stored), and served again once the second passes.
TEST(CallResources, WithoutAuthTheRequestRateIsLimitedPerPeerAddress) {
  const std::string dir = MakeTempDir("sweepd-resources-");
  const std::string port_file = dir + "/addr";
  constexpr int kRate = 4;
  ChildProcess sweepd({kSweepd, "--db", dir + "/sweepd.db", "--listen", "127.0.0.1:0", "--port-file", port_file,
                       "--max-requests-per-second", std::to_string(kRate)},
                      dir + "/sweepd.log");
  const std::string address = WaitForPortFile(port_file, 30s);
  ASSERT_FALSE(address.empty()) << ReadFile(dir + "/sweepd.log");
  // Two connections from one address share the allowance.
  auto a = v1::SweepService::NewStub(NewChannel(address, 1));
  auto b = v1::SweepService::NewStub(NewChannel(address, 2));
  v1::ListSweepsResponse sweeps;
  int ok = 0;
  grpc::Status refused;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5 * kRate; ++i) {
    grpc::Status s = ListSweeps(i % 2 ? *a : *b, &sweeps);
    if (s.ok()) {
      ++ok;
    } else {
      refused = s;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LE(ok, kRate + static_cast<int>(seconds * kRate) + 1);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("peer 127.0.0.1"));
  {
    grpc::ClientContext ctx;
    v1::SubmitSweepRequest req;
    req.set_spec_yaml(ReadFile(kSpec));
    req.set_spec_path(kSpec);
    v1::SubmitSweepResponse resp;
    EXPECT_EQ(a->SubmitSweep(&ctx, req, &resp).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE(ListSweeps(*a, &sweeps).ok());
  EXPECT_EQ(sweeps.sweeps_size(), 0);  // the refused submit stored nothing
  sweepd.Signal(SIGTERM);
  EXPECT_EQ(WEXITSTATUS(sweepd.Wait(20s)), 0);
}

}  // namespace
}  // namespace sweepd
