// A profiled training step (see step_profile.h): torch::autograd::profiler's Kineto API, the
// one torch.profiler.profile() drives, with the kernels grouped by name afterwards.
#include "worker/trainer/step_profile.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/torch.h>

namespace sweepd::trainer {
namespace {

namespace prof = torch::autograd::profiler;
namespace impl = torch::profiler::impl;

// Kernel groups by substrings of the (demangled) kernel name, first match wins: cuBLAS and
// CUTLASS GEMMs, flash / memory-efficient attention, norms, the loss, the optimizer's
// multi-tensor kernels, copies, then PyTorch's generic elementwise and reduction kernels and
// sweep-train's own fused ones (worker/models/cuda_kernels.cc: rope_*, swiglu_*).
const std::vector<std::pair<std::string, std::vector<std::string>>>& Groups() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> kGroups = {
      {"attention", {"flash", "fmha", "attention", "Attention", "sdpa", "cudnn_generated_fort_native_sdpa"}},
      {"gemm", {"gemm", "Gemm", "GEMM", "cutlass", "xmma", "nvjet", "cublas", "matmul", "splitKreduce"}},
      {"norm", {"rms_norm", "RmsNorm", "rmsnorm", "layer_norm", "LayerNorm"}},
      {"loss", {"softmax", "SoftMax", "nll_loss", "cross_entropy", "log_softmax"}},
      {"optimizer", {"adam", "Adam", "multi_tensor_apply", "foreach", "fused_adamw"}},
      {"memcpy", {"Memcpy", "memcpy", "Memset", "memset"}},
      {"elementwise", {"elementwise", "Elementwise", "CatArrayBatchedCopy", "index", "fill", "copy", "rope_",
                       "swiglu_"}},
      {"reduction", {"reduce", "Reduce"}},
  };
  return kGroups;
}

std::string GroupOf(const std::string& name) {
  for (const auto& [group, needles] : Groups()) {
    for (const auto& n : needles) {
      if (name.find(n) != std::string::npos) return group;
    }
  }
  return "other";
}

struct Kernel {
  std::string name;
  double start_us = 0;
  double duration_us = 0;
};

double StartUs(const prof::KinetoEvent& e) {
#if TORCH_VERSION_MAJOR >= 2
  return static_cast<double>(e.startNs()) / 1000.0;
#else
  return static_cast<double>(e.startUs());
#endif
}

double DurationUs(const prof::KinetoEvent& e) {
#if TORCH_VERSION_MAJOR >= 2
  return static_cast<double>(e.durationNs()) / 1000.0;
#else
  return static_cast<double>(e.durationUs());
#endif
}

}  // namespace

nlohmann::json ProfileStep(const std::function<void()>& step, const std::function<void()>& synchronize, bool cuda,
                           const std::string& trace_path) {
  std::set<impl::ActivityType> activities = {impl::ActivityType::CPU};
  if (cuda) activities.insert(impl::ActivityType::CUDA);
  const impl::ProfilerConfig config(impl::ProfilerState::KINETO);
  prof::prepareProfiler(config, activities);
  prof::enableProfiler(config, activities);
  try {
    step();
    synchronize();
  } catch (...) {
    prof::disableProfiler();
    throw;
  }
  std::unique_ptr<prof::ProfilerResult> result = prof::disableProfiler();
  if (!result) throw std::runtime_error("the profiler returned no result (LibTorch built without Kineto?)");
  try {
    result->save(trace_path);
  } catch (const c10::Error& e) {
    // Debian's LibTorch 1.13 is built without Kineto; the pip LibTorch (deploy/build-trainer.sh) has it.
    throw std::runtime_error("--profile: this LibTorch " + std::string(TORCH_VERSION) +
                             " cannot write a trace: " + e.what_without_backtrace());
  }

  std::vector<Kernel> kernels;
  for (const auto& e : result->events()) {
    if (e.deviceType() != c10::DeviceType::CUDA) continue;
    kernels.push_back({e.name(), StartUs(e), DurationUs(e)});
  }
  nlohmann::json summary = {{"trace", trace_path}, {"device_events", kernels.size()}};
  if (kernels.empty()) {
    summary["note"] = cuda ? "no device events: CUPTI did not report kernels" : "CPU run: no device events";
    return summary;
  }
  std::sort(kernels.begin(), kernels.end(), [](const Kernel& a, const Kernel& b) { return a.start_us < b.start_us; });
  // Busy time is the union of the kernels' intervals (streams may overlap); idle is the rest
  // of the span from the first kernel's start to the last one's end.
  double busy = 0, cursor = kernels.front().start_us, span_end = cursor;
  for (const auto& k : kernels) {
    const double end = k.start_us + k.duration_us;
    if (end > cursor) busy += end - std::max(cursor, k.start_us);
    cursor = std::max(cursor, end);
    span_end = std::max(span_end, end);
  }
  const double span = span_end - kernels.front().start_us;
  std::map<std::string, double> group_us;
  std::map<std::string, std::pair<double, int64_t>> by_name;
  double kernel_total = 0;
  for (const auto& k : kernels) {
    group_us[GroupOf(k.name)] += k.duration_us;
    auto& n = by_name[k.name];
    n.first += k.duration_us;
    n.second += 1;
    kernel_total += k.duration_us;
  }
  summary["span_us"] = span;
  summary["busy_us"] = busy;
  summary["idle_us"] = span - busy;
  summary["kernel_us"] = kernel_total;
  nlohmann::json groups = nlohmann::json::object();
  for (const auto& [g, us] : group_us) groups[g] = {{"us", us}, {"share_of_span", us / span}};
  groups["idle"] = {{"us", span - busy}, {"share_of_span", (span - busy) / span}};
  summary["groups"] = groups;
  std::vector<std::pair<std::string, std::pair<double, int64_t>>> top(by_name.begin(), by_name.end());
  std::sort(top.begin(), top.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  nlohmann::json top_json = nlohmann::json::array();
  for (size_t i = 0; i < top.size() && i < 25; ++i) {
    top_json.push_back({{"name", top[i].first.substr(0, 400)},
                        {"group", GroupOf(top[i].first)},
                        {"us", top[i].second.first},
                        {"calls", top[i].second.second},
                        {"share_of_span", top[i].second.first / span}});
  }
  summary["top_kernels"] = top_json;
  return summary;
}

namespace {

// A kernel's name for the table: ATen's generic elementwise kernels differ only in the functor
// they apply (`elementwise_kernel<128, 4, gpu_kernel_impl_nocast<BinaryFunctor<..., MulFunctor>>>`),
// so the part from the functor on is shown; other names from their start. At most 120 characters.
std::string KernelDisplayName(const std::string& name) {
  for (const char* marker : {"gpu_kernel_impl_nocast<", "gpu_kernel_impl<", "unrolled_elementwise_kernel<",
                             "vectorized_elementwise_kernel<"}) {
    const size_t at = name.find(marker);
    if (at == std::string::npos) continue;
    std::string tail = name.substr(at + std::string(marker).size());
    for (const char* noise : {"at::native::", "(anonymous namespace)::", "c10::"}) {
      for (size_t p = tail.find(noise); p != std::string::npos; p = tail.find(noise)) {
        tail.erase(p, std::string(noise).size());
      }
    }
    return name.substr(0, name.find('<')).substr(name.rfind(' ', name.find('<')) + 1) + "<" + tail.substr(0, 100);
  }
  return name.substr(0, 120);
}

}  // namespace

std::string ProfileSummaryMarkdown(const nlohmann::json& summary) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(1);
  if (!summary.contains("groups")) {
    out << "No device events (" << summary.value("note", "") << "); trace: " << summary.value("trace", "") << "\n";
    return out.str();
  }
  const double span = summary["span_us"].get<double>();
  out << "One step: " << span / 1000.0 << " ms from the first kernel's start to the last one's end, "
      << summary["busy_us"].get<double>() / 1000.0 << " ms busy, " << summary["idle_us"].get<double>() / 1000.0
      << " ms idle; trace " << summary.value("trace", "") << "\n\n";
  out << "| group | ms | share of the step |\n| --- | ---: | ---: |\n";
  std::vector<std::pair<double, std::string>> groups;
  for (const auto& [g, v] : summary["groups"].items()) groups.emplace_back(v["us"].get<double>(), g);
  std::sort(groups.rbegin(), groups.rend());
  for (const auto& [us, g] : groups) out << "| " << g << " | " << us / 1000.0 << " | " << 100 * us / span << "% |\n";
  out << "\n| kernel | group | calls | ms | share |\n| --- | --- | ---: | ---: | ---: |\n";
  for (const auto& k : summary["top_kernels"]) {
    std::string name = KernelDisplayName(k["name"].get<std::string>());
    std::replace(name.begin(), name.end(), '|', '/');
    out << "| `" << name << "` | " << k["group"].get<std::string>() << " | " << k["calls"].get<int64_t>()
        << " | " << k["us"].get<double>() / 1000.0 << " | " << 100 * k["share_of_span"].get<double>() << "% |\n";
  }
  return out.str();
}

}  // namespace sweepd::trainer
