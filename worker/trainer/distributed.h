// One job across several devices (the job's `devices`, a spec's resources.gpus_per_job):
// sweep-train starts one process per device itself (LaunchRanks), each a rank of a c10d
// process group: NCCL between CUDA devices where LibTorch has it and every rank has its own
// device, gloo otherwise (CPU ranks, the tests, ranks sharing a GPU). Every rank packs the
// same update; rank r runs its contiguous share of the update's micro-batches, and the
// gradients of the trainable tensors are summed over the ranks before the optimizer step, so
// the update is the one a single process takes, up to the order of the sums. Rank 0 alone
// writes checkpoints, the adapter folder, evaluations and metric lines (the launcher
// discards the other ranks' stdout).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace sweepd::trainer {

// The environment the launcher gives each rank.
inline constexpr const char* kRankEnv = "SWEEP_TRAIN_RANK";
inline constexpr const char* kWorldSizeEnv = "SWEEP_TRAIN_WORLD_SIZE";
inline constexpr const char* kRendezvousEnv = "SWEEP_TRAIN_RENDEZVOUS";  // a FileStore path

struct RankInfo {
  int rank = 0;
  int world = 1;
  std::string rendezvous;
};

// This process's rank from the launcher's environment; {0, 1} when it is not a rank.
// Throws InvalidInput on values that do not parse.
RankInfo RankFromEnvironment();

// The process group of this process (one per process: a rank is a process).
class DataParallel {
 public:
  static DataParallel& Current();

  // Joins the group (blocks until every rank has joined). `device` is this rank's device.
  void Init(const RankInfo& info, const torch::Device& device);
  int rank() const { return rank_; }
  int world() const { return world_; }
  bool main() const { return rank_ == 0; }
  // The backend's name once Init ran with world > 1 ("gloo" or "nccl").
  const std::string& backend() const { return backend_; }

  // Sums each tensor over the ranks, in place (one flat buffer per dtype and device).
  void AllReduceSum(std::vector<torch::Tensor>& tensors);
  // Sums the trainable tensors' gradients (an undefined gradient counts as zero and is
  // created) and `loss` over the ranks.
  void AllReduceGradients(const std::vector<torch::Tensor>& params, double& loss);

  ~DataParallel();

 private:
  DataParallel();
  struct Group;
  std::unique_ptr<Group> group_;
  int rank_ = 0;
  int world_ = 1;
  std::string backend_;
};

// The micro-batches [first, last) of an update with `count` micro-batches that `rank` of
// `world` runs: contiguous shares, the first `count % world` ranks one more.
std::pair<int64_t, int64_t> RankShare(int64_t count, int rank, int world);

// Runs `world` ranks of `sweep-train ARGS...` (this executable) with the launcher's
// environment plus the rank variables and NCCL_NVLS_ENABLE=0, rank r on device r; rank 0's
// stdout is this process's, the others' is discarded. Waits for all; when one fails, stops
// the others (SIGTERM, then SIGKILL after 10 s) and returns its exit status (1 for a
// signal); *stop set (SIGTERM to the launcher) is passed on to every rank.
int LaunchRanks(int world, const std::vector<std::string>& args, const std::string& rendezvous_dir,
                const std::atomic<bool>* stop);

}  // namespace sweepd::trainer
