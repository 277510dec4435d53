// What a node offers to sweepd: its devices, as `sweep-train probe` reports them, turned
// into schedulable slots (one per GPU or NPU by default, CPU slots on CPU-only nodes),
// and the environment that pins a job to its slot's device.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace sweepd::agent {

struct Device {
  std::string kind;  // cpu, cuda, npu
  int index = 0;     // the device's index as the trainer sees it
  std::string name;
  int64_t memory_bytes = 0;
  std::string compute_capability;
};

struct SlotInfo {
  int index = 0;  // the slot's number on this worker, 0..n-1
  Device device;
};

// Parses the probe's JSON: {"devices":[{"kind":"cuda","index":0,...},...]}.
Result<std::vector<Device>> ParseProbeOutput(const std::string& json_text);

// Runs `trainer probe` and parses what it prints.
Result<std::vector<Device>> ProbeDevices(const std::string& trainer, std::chrono::seconds timeout);

// One slot per accelerator (cuda or npu); a CPU-only node gets CPU slots. `requested`
// > 0 sets the count: the first N accelerators, or N CPU slots on a CPU-only node.
Result<std::vector<SlotInfo>> PlanSlots(const std::vector<Device>& devices, int requested);

// The environment a job on `slot` runs with: CUDA_VISIBLE_DEVICES (or the NPU
// equivalent) names only its device, mapped through the agent's own visible-device list
// when a launcher (SLURM, Kubernetes) already restricted it. `inherited` is that list,
// e.g. getenv("CUDA_VISIBLE_DEVICES"), empty when unset.
std::map<std::string, std::string> SlotEnvironment(const SlotInfo& slot,
                                                   const std::string& inherited_cuda,
                                                   const std::string& inherited_npu);

}  // namespace sweepd::agent
