// One training step under LibTorch's Kineto profiler (torch.profiler's C++ side): a Chrome
// trace of the step, and where its GPU time goes by kernel group, for `sweep-train bench
// --profile` (docs/benchmarks.md, "Where a 7B step's time goes").
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace sweepd::trainer {

// Runs `step` once with the profiler on (CPU and, when `cuda`, CUDA activities), `synchronize`
// after it, writes the Chrome trace to `trace_path` and returns the summary: device busy and
// idle microseconds between the first kernel's start and the last one's end, microseconds and
// share per group (gemm, attention, norm, elementwise, reduction, loss, optimizer, memcpy,
// other) and the top kernels by device time. Throws std::runtime_error when this LibTorch
// cannot profile.
nlohmann::json ProfileStep(const std::function<void()>& step, const std::function<void()>& synchronize, bool cuda,
                           const std::string& trace_path);

// The summary as a Markdown table (groups, then the top kernels).
std::string ProfileSummaryMarkdown(const nlohmann::json& summary);

}  // namespace sweepd::trainer
