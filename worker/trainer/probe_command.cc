// `sweep-train probe`: the devices this build can use, as one JSON object, for the worker
// to advertise to sweepd.
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "worker/compat.h"
#include "worker/models/fused_ops.h"
#include "worker/trainer/commands.h"

#if defined(SWEEPD_HAVE_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace sweepd::trainer {
namespace {

nlohmann::json CudaDevices() {
  nlohmann::json out = nlohmann::json::array();
#if defined(SWEEPD_HAVE_CUDA)
  const int n = static_cast<int>(torch::cuda::device_count());
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    out.push_back({{"kind", "cuda"},
                   {"index", i},
                   {"name", prop.name},
                   {"memory_bytes", static_cast<int64_t>(prop.totalGlobalMem)},
                   {"compute_capability", std::to_string(prop.major) + "." + std::to_string(prop.minor)}});
  }
#endif
  return out;
}

}  // namespace

void CheckEnvironment() { models::FusedKernelsAllowed(); }

void AddProbeCommand(CLI::App& app, int* exit_code) {
  CLI::App* probe = app.add_subcommand("probe", "Print the devices this trainer can use, as JSON");
  probe->callback([exit_code] {
    nlohmann::json devices = nlohmann::json::array();
    devices.push_back({{"kind", "cpu"}, {"index", 0}, {"name", "cpu"},
                       {"cores", static_cast<int64_t>(std::thread::hardware_concurrency())}});
    for (const auto& d : CudaDevices()) devices.push_back(d);
    nlohmann::json out = {{"torch_version", TORCH_VERSION},
                          {"cuda_available", torch::cuda::is_available()},
                          {"fused_attention", compat::kHasFusedAttention},
                          {"devices", devices}};
    std::cout << out.dump() << std::endl;
    *exit_code = 0;
  });
}

}  // namespace sweepd::trainer
