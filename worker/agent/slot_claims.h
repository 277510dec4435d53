// Which of a node's slots a job holds. A job across devices (resources.gpus_per_job = G)
// runs on G slots of one kind: the slot that leases it and G - 1 idle ones. Before a slot
// asks sweepd for a job it reserves every idle slot of its kind (Reserve: the count goes to
// sweepd as free_devices); once it knows the job it keeps what the job needs (Claim) and lets
// the rest go; when the job ends it releases all (Release). A reserved or claimed slot leases
// nothing itself. Not thread-safe: the agent calls it under its own lock.
#pragma once

#include <vector>

#include "worker/agent/device_probe.h"

namespace sweepd::agent {

class SlotClaims {
 public:
  explicit SlotClaims(std::vector<SlotInfo> slots);

  // Whether `slot` is free to lease: neither reserved nor claimed by another slot's job.
  bool Available(int slot) const;
  // Reserves for `slot` every available slot of its device kind, itself first; returns how
  // many (0 when `slot` itself is not available).
  int Reserve(int slot);
  // Keeps `devices` of the slots `slot` reserved (itself, then the lowest indices) and frees
  // the others; returns the job's slots in that order, or empty (and frees all but `slot`
  // itself) when fewer were reserved.
  std::vector<SlotInfo> Claim(int slot, int devices);
  // Frees every slot `slot` reserved or claimed, itself included.
  void Release(int slot);

 private:
  std::vector<SlotInfo> slots_;
  std::vector<int> holder_;  // by slot position: the slot whose lease holds it, -1 when free
  int PositionOf(int slot) const;
};

// The environment a job on `slots` runs with: CUDA_VISIBLE_DEVICES (or the NPU equivalent)
// lists exactly their devices, in order, mapped through the agent's own visible-device list
// (SlotEnvironment for one slot).
std::map<std::string, std::string> GroupEnvironment(const std::vector<SlotInfo>& slots,
                                                    const std::string& inherited_cuda,
                                                    const std::string& inherited_npu);

// The `devices` field of a leased job's configuration (1 when absent or unreadable: the
// trainer then refuses the job itself, naming the field).
int JobDevices(const std::string& config_json);

}  // namespace sweepd::agent
