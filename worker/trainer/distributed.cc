// DataParallel and the rank launcher; see distributed.h. This file is compiled on its own
// (not in a unity batch) with USE_C10D_GLOO, which LibTorch's c10d headers need to see.
#include "worker/trainer/distributed.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <thread>

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#ifdef SWEEPD_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef SWEEPD_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/torch.h>

#include "worker/failures.h"

extern char** environ;

namespace sweepd::trainer {
namespace fs = std::filesystem;
namespace {

int ParseEnvInt(const char* name, const char* value) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < 0 || v > 4096) {
    throw InvalidInput(std::string(name) + "='" + value + "' is not a rank number");
  }
  return static_cast<int>(v);
}

// How long a collective may wait for the slowest rank (rank 0 evaluates and checkpoints
// between steps while the others wait in the next all-reduce).
constexpr std::chrono::milliseconds kCollectiveTimeout = std::chrono::hours(2);

}  // namespace

struct DataParallel::Group {
  // The backends' common base is ProcessGroup in LibTorch 1.x and Backend in 2.x; both have
  // allreduce(std::vector<at::Tensor>&, const AllreduceOptions&).
#ifdef SWEEPD_HAVE_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#endif
#ifdef SWEEPD_HAVE_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  void AllReduce(std::vector<at::Tensor>& tensors) {
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
#ifdef SWEEPD_HAVE_NCCL
    if (nccl) {
      nccl->allreduce(tensors, opts)->wait();
      return;
    }
#endif
#ifdef SWEEPD_HAVE_GLOO
    gloo->allreduce(tensors, opts)->wait();
#endif
  }
};

RankInfo RankFromEnvironment() {
  RankInfo info;
  const char* rank = std::getenv(kRankEnv);
  const char* world = std::getenv(kWorldSizeEnv);
  const char* rendezvous = std::getenv(kRendezvousEnv);
  if (rank == nullptr && world == nullptr) return info;
  if (rank == nullptr || world == nullptr || rendezvous == nullptr) {
    throw InvalidInput(std::string("a rank needs all of ") + kRankEnv + ", " + kWorldSizeEnv + " and " +
                       kRendezvousEnv);
  }
  info.rank = ParseEnvInt(kRankEnv, rank);
  info.world = ParseEnvInt(kWorldSizeEnv, world);
  info.rendezvous = rendezvous;
  if (info.world < 1 || info.rank >= info.world) {
    throw InvalidInput(std::string(kRankEnv) + " " + rank + " is not below " + kWorldSizeEnv + " " + world);
  }
  return info;
}

DataParallel::DataParallel() = default;
DataParallel::~DataParallel() = default;

DataParallel& DataParallel::Current() {
  static DataParallel instance;
  return instance;
}

void DataParallel::Init(const RankInfo& info, const torch::Device& device) {
  rank_ = info.rank;
  world_ = info.world;
  if (world_ <= 1) return;
  auto store = c10::make_intrusive<c10d::FileStore>(info.rendezvous, world_);
  group_ = std::make_unique<Group>();
#ifdef SWEEPD_HAVE_NCCL
  // NCCL needs a device per rank; ranks sharing a device use gloo.
  if (device.is_cuda() && static_cast<int>(torch::cuda::device_count()) >= world_) {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = kCollectiveTimeout;
    group_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank_, world_, opts);
    backend_ = "nccl";
    return;
  }
#endif
  (void)device;
#ifndef SWEEPD_HAVE_GLOO
  throw InvalidInput("this sweep-train was built without gloo (the gloo headers were missing), so it runs a job "
                     "across devices only on CUDA devices of its own, with NCCL");
#else
  auto opts = c10d::ProcessGroupGloo::Options::create(kCollectiveTimeout);
  // One node: the ranks meet on loopback, whatever the host's name resolves to.
  opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  group_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank_, world_, opts);
  backend_ = "gloo";
#endif
}

void DataParallel::AllReduceSum(std::vector<torch::Tensor>& tensors) {
  if (world_ <= 1 || tensors.empty()) return;
  // One flat buffer per (dtype, device): one collective instead of one per tensor.
  std::map<std::pair<int, std::string>, std::vector<size_t>> groups;
  for (size_t i = 0; i < tensors.size(); ++i) {
    groups[{static_cast<int>(tensors[i].scalar_type()), tensors[i].device().str()}].push_back(i);
  }
  for (const auto& [key, members] : groups) {
    std::vector<torch::Tensor> flat_parts;
    for (size_t i : members) flat_parts.push_back(tensors[i].reshape({-1}));
    std::vector<at::Tensor> buffer = {torch::cat(flat_parts)};
    group_->AllReduce(buffer);
    int64_t offset = 0;
    for (size_t i : members) {
      const int64_t n = tensors[i].numel();
      tensors[i].copy_(buffer[0].narrow(0, offset, n).view_as(tensors[i]));
      offset += n;
    }
  }
}

void DataParallel::AllReduceGradients(const std::vector<torch::Tensor>& params, double& loss) {
  if (world_ <= 1) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const torch::Tensor& p : params) {
    torch::Tensor g = p.grad();
    if (!g.defined()) {
      // This rank ran no micro-batch that reached the tensor: its share is zero.
      p.mutable_grad() = torch::zeros_like(p);
      g = p.grad();
    }
    grads.push_back(g);
  }
  const torch::Device device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  grads.push_back(torch::full({1}, loss, torch::TensorOptions().dtype(torch::kFloat64).device(device)));
  AllReduceSum(grads);
  loss = grads.back().item<double>();
}

std::pair<int64_t, int64_t> RankShare(int64_t count, int rank, int world) {
  const int64_t base = count / world;
  const int64_t extra = count % world;
  const int64_t first = rank * base + std::min<int64_t>(rank, extra);
  return {first, first + base + (rank < extra ? 1 : 0)};
}

int LaunchRanks(int world, const std::vector<std::string>& args, const std::string& rendezvous_dir,
                const std::atomic<bool>* stop) {
  fs::create_directories(rendezvous_dir);
  const std::string store = (fs::path(rendezvous_dir) / ("store-" + std::to_string(getpid()))).string();
  fs::remove(store);
  std::string self = fs::read_symlink("/proc/self/exe").string();

  std::vector<pid_t> pids;  // by rank; -1 once it has ended
  auto stop_all = [&](int sig) {
    for (pid_t pid : pids) {
      if (pid > 0) kill(pid, sig);
    }
  };
  for (int r = 0; r < world; ++r) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string kv = *e;
      const std::string key = kv.substr(0, kv.find('='));
      if (key == kRankEnv || key == kWorldSizeEnv || key == kRendezvousEnv) continue;
      env.push_back(kv);
    }
    env.push_back(std::string(kRankEnv) + "=" + std::to_string(r));
    env.push_back(std::string(kWorldSizeEnv) + "=" + std::to_string(world));
    env.push_back(std::string(kRendezvousEnv) + "=" + store);
    // NVLink multicast (NVLS) stays off wherever a rank starts.
    if (std::getenv("NCCL_NVLS_ENABLE") == nullptr) env.push_back("NCCL_NVLS_ENABLE=0");
    std::vector<char*> envp;
    for (auto& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_s = {self};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (r != 0) posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      stop_all(SIGKILL);
      for (pid_t p : pids) waitpid(p, nullptr, 0);
      throw std::runtime_error("cannot start rank " + std::to_string(r) + ": " + std::strerror(rc));
    }
    pids.push_back(pid);
  }

  int result = 0;
  bool failed = false;
  bool passed_stop = false;
  std::optional<std::chrono::steady_clock::time_point> kill_at;
  size_t running = pids.size();
  while (running > 0) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (size_t i = 0; i < pids.size(); ++i) {
        if (pids[i] != pid) continue;
        pids[i] = -1;
        --running;
        const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
        if (code != 0 && !failed) {
          failed = true;
          result = code;
          if (WIFSIGNALED(status)) {
            std::fprintf(stderr, "sweep-train: rank %zu ended by signal %d\n", i, WTERMSIG(status));
          }
          // One rank down: the others would wait in their next all-reduce until its timeout.
          stop_all(SIGTERM);
          kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        }
      }
      continue;
    }
    if (stop != nullptr && stop->load() && !passed_stop) {
      passed_stop = true;
      stop_all(SIGTERM);
      kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    }
    if (kill_at && std::chrono::steady_clock::now() > *kill_at) {
      stop_all(SIGKILL);
      kill_at.reset();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::error_code ignored;
  fs::remove(store, ignored);
  fs::remove(rendezvous_dir, ignored);  // only when empty: another launcher may share it
  return result;
}

}  // namespace sweepd::trainer
