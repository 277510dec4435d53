// Device probing and slot planning; see device_probe.h.
#include "worker/agent/device_probe.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "worker/agent/child_process.h"

namespace sweepd::agent {
namespace {

bool IsAccelerator(const std::string& kind) { return kind == "cuda" || kind == "npu"; }

// The i-th entry of a comma-separated device list, or i itself when there is none.
std::string MapVisible(const std::string& inherited, int index) {
  if (inherited.empty()) return std::to_string(index);
  std::stringstream ss(inherited);
  std::string item;
  for (int i = 0; std::getline(ss, item, ','); ++i) {
    if (i == index) return item;
  }
  return std::to_string(index);
}

}  // namespace

Result<std::vector<Device>> ParseProbeOutput(const std::string& json_text) {
  // The probe may print log lines first; the answer is the last line that is JSON.
  std::stringstream ss(json_text);
  std::string line;
  nlohmann::json doc;
  while (std::getline(ss, line)) {
    auto parsed = nlohmann::json::parse(line, nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object()) doc = std::move(parsed);
  }
  if (!doc.is_object() || !doc.contains("devices") || !doc["devices"].is_array()) {
    return Status::InvalidArgument("probe output has no \"devices\" list");
  }
  std::vector<Device> devices;
  for (const auto& d : doc["devices"]) {
    if (!d.is_object() || !d.contains("kind") || !d["kind"].is_string()) {
      return Status::InvalidArgument("probe output: a device without \"kind\"");
    }
    Device dev;
    dev.kind = d["kind"].get<std::string>();
    dev.index = d.value("index", 0);
    dev.name = d.value("name", dev.kind);
    dev.memory_bytes = d.value("memory_bytes", int64_t{0});
    dev.compute_capability = d.value("compute_capability", std::string());
    devices.push_back(std::move(dev));
  }
  return devices;
}

Result<std::vector<Device>> ProbeDevices(const std::string& trainer, std::chrono::seconds timeout) {
  auto child = ChildProcess::Spawn({trainer, {"probe"}, "", {}});
  if (!child.ok()) return child.status();
  std::string out;
  std::thread drain_stderr([&] { ReadLines((*child)->stderr_fd(), [](const std::string&) {}); });
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{(*child)->stdout_fd(), POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = read((*child)->stdout_fd(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  if (timed_out) (*child)->SignalGroup(SIGKILL);
  const ExitStatus exit = (*child)->Wait();
  drain_stderr.join();
  if (timed_out) return Status::Unavailable(trainer + " probe did not answer in time");
  if (exit.exit_code != 0) {
    return Status::Unavailable(trainer + " probe failed (exit " + std::to_string(exit.exit_code) +
                               ", signal " + std::to_string(exit.signal) + ")");
  }
  return ParseProbeOutput(out);
}

Result<std::vector<SlotInfo>> PlanSlots(const std::vector<Device>& devices, int requested) {
  if (requested < 0) return Status::InvalidArgument("--slots must be positive");
  std::vector<Device> accelerators;
  Device cpu{"cpu", 0, "cpu", 0, ""};
  for (const auto& d : devices) {
    if (IsAccelerator(d.kind)) accelerators.push_back(d);
    if (d.kind == "cpu") cpu = d;
  }
  std::vector<SlotInfo> slots;
  if (accelerators.empty()) {
    const int n = requested > 0 ? requested : 1;
    for (int i = 0; i < n; ++i) slots.push_back({i, cpu});
    return slots;
  }
  const int n = requested > 0 ? requested : static_cast<int>(accelerators.size());
  if (n > static_cast<int>(accelerators.size())) {
    return Status::InvalidArgument("--slots " + std::to_string(n) + " but the probe found only " +
                                   std::to_string(accelerators.size()) + " " +
                                   accelerators.front().kind + " device(s)");
  }
  for (int i = 0; i < n; ++i) slots.push_back({i, accelerators[i]});
  return slots;
}

std::map<std::string, std::string> SlotEnvironment(const SlotInfo& slot,
                                                   const std::string& inherited_cuda,
                                                   const std::string& inherited_npu) {
  if (slot.device.kind == "cuda") {
    return {{"CUDA_VISIBLE_DEVICES", MapVisible(inherited_cuda, slot.device.index)}};
  }
  if (slot.device.kind == "npu") {
    return {{"ASCEND_RT_VISIBLE_DEVICES", MapVisible(inherited_npu, slot.device.index)}};
  }
  // A CPU job on a GPU node must not grab a GPU that another slot's job owns.
  return {{"CUDA_VISIBLE_DEVICES", ""}};
}

}  // namespace sweepd::agent
