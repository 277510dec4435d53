// One training micro-batch (forward and backward) replayed as a CUDA graph: a step of a
// PEFT model launches thousands of small kernels (every adapted layer adds its own), and
// launched one by one from the host they leave the GPU idle between them; a graph launches
// them all at once. Used by `sweep-train run` and `sweep-train bench` alike.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <torch/torch.h>

namespace sweepd::trainer {

// Whether this sweep-train can capture CUDA graphs (a CUDA build against LibTorch 2.x).
bool CudaGraphsBuiltIn();

// Whether training passes on `device` run as CUDA graphs: a CUDA device, a build that has
// them, adapters that allow them (AdapterSet::CudaGraphSafe), and SWEEP_TRAIN_CUDA_GRAPHS not
// set to 0 (the operator's switch back to eager launches).
bool UseCudaGraphs(const torch::Device& device, bool adapters_safe);

// Runs `pass` (forward, loss, backward; returns the detached loss) eagerly `eager_runs` times
// on a side stream, captures it into a CUDA graph at the next call and from then on replays
// the graph. What `pass` must keep for replays to be the same computation:
//   - it reads its inputs from tensors whose storage never changes (copy new data into them);
//   - every trainable tensor has a gradient tensor before the first call, zeroed in place
//     between steps and never replaced (the backward accumulates into it: AdamW's
//     keep_gradients mode), so the graph's writes land where the optimizer reads;
//   - nothing in it reads a device value on the host or changes shape between calls.
// A capture that fails (an operation the graph cannot hold) is reported on stderr once and
// the pass runs eagerly from then on.
class GraphedPass {
 public:
  GraphedPass(torch::Device device, std::function<torch::Tensor()> pass, int eager_runs = 1);
  ~GraphedPass();
  GraphedPass(const GraphedPass&) = delete;
  GraphedPass& operator=(const GraphedPass&) = delete;

  // The pass's loss: after capture, the same tensor each call, refilled by the replay.
  torch::Tensor Run();
  bool Captured() const;
  // Drops the graph and its memory pool (after training, before evaluation needs the memory);
  // a later Run() runs eagerly.
  void Release();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace sweepd::trainer
