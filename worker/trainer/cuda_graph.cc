// GraphedPass: eager runs and the capture on a side stream (a capture cannot run on the
// legacy default stream, and the eager runs there set up what the capture then reuses:
// cuBLAS workspaces, lazily built kernels), replays on the caller's stream.
#include "worker/trainer/cuda_graph.h"

#include <cstdlib>
#include <iostream>
#include <optional>
#include <utility>

#include "worker/compat.h"

#if defined(SWEEPD_CUDA_GRAPHS)
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

namespace sweepd::trainer {

bool CudaGraphsBuiltIn() {
#if defined(SWEEPD_CUDA_GRAPHS)
  return true;
#else
  return false;
#endif
}

bool UseCudaGraphs(const torch::Device& device, bool adapters_safe) {
  const char* env = std::getenv("SWEEP_TRAIN_CUDA_GRAPHS");
  if (env != nullptr && std::string(env) == "0") return false;
  return CudaGraphsBuiltIn() && device.is_cuda() && adapters_safe;
}

struct GraphedPass::State {
  State(torch::Device d, std::function<torch::Tensor()> p, int eager) : device(d), pass(std::move(p)), eager_left(eager) {}
  torch::Device device;
  std::function<torch::Tensor()> pass;
  int eager_left;
  bool eager_only = false;  // a capture failed, or Release(): no more graphs
  torch::Tensor loss;
#if defined(SWEEPD_CUDA_GRAPHS)
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  std::optional<c10::cuda::CUDAStream> side;
#endif
};

GraphedPass::GraphedPass(torch::Device device, std::function<torch::Tensor()> pass, int eager_runs)
    : state_(std::make_unique<State>(device, std::move(pass), eager_runs < 0 ? 0 : eager_runs)) {}

GraphedPass::~GraphedPass() = default;

bool GraphedPass::Captured() const {
#if defined(SWEEPD_CUDA_GRAPHS)
  return state_->graph != nullptr;
#else
  return false;
#endif
}

void GraphedPass::Release() {
  State& s = *state_;
  s.loss = torch::Tensor();
  s.eager_only = true;  // eager from now on
#if defined(SWEEPD_CUDA_GRAPHS)
  s.graph.reset();
#endif
}

torch::Tensor GraphedPass::Run() {
  State& s = *state_;
#if defined(SWEEPD_CUDA_GRAPHS)
  if (s.graph) {
    s.graph->replay();
    return s.loss;
  }
  if (s.eager_only || !s.device.is_cuda()) return s.pass();
  const c10::DeviceIndex index = s.device.has_index() ? s.device.index() : c10::cuda::current_device();
  if (!s.side) s.side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, index);
  // Host syncs around the side stream: only on the eager runs and the capture.
  torch::cuda::synchronize(index);
  std::string error;
  {
    c10::cuda::CUDAStreamGuard on_side(*s.side);
    if (s.eager_left > 0) {
      --s.eager_left;
      torch::Tensor loss = s.pass();
      torch::cuda::synchronize(index);
      return loss;
    }
    // The eager runs' cached blocks go back to the device first, so that the graph's private
    // pool does not sit next to a cached copy of the same activations.
    c10::cuda::CUDACachingAllocator::emptyCache();
    auto graph = std::make_unique<at::cuda::CUDAGraph>();
    try {
      graph->capture_begin();
      torch::Tensor loss;
      try {
        loss = s.pass();
      } catch (...) {
        try {
          graph->capture_end();  // ends the capture and the allocator's routing to its pool
        } catch (...) {
        }
        throw;
      }
      graph->capture_end();
      s.loss = loss;
      s.graph = std::move(graph);
    } catch (const std::exception& e) {
      error = e.what();
      (void)cudaGetLastError();  // an invalidated capture leaves a (non-sticky) error behind
    }
  }
  if (s.graph) {
    s.graph->replay();  // the capture recorded the pass without running it
    return s.loss;
  }
  s.eager_only = true;
  std::cerr << "sweep-train: CUDA graph capture failed, running the training pass eagerly: "
            << error.substr(0, error.find('\n')) << std::endl;
  torch::cuda::synchronize(index);
  return s.pass();
#else
  return s.pass();
#endif
}

}  // namespace sweepd::trainer
