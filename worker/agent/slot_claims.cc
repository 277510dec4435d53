// SlotClaims; see slot_claims.h.
#include "worker/agent/slot_claims.h"

#include <nlohmann/json.hpp>

namespace sweepd::agent {

SlotClaims::SlotClaims(std::vector<SlotInfo> slots) : slots_(std::move(slots)), holder_(slots_.size(), -1) {}

int SlotClaims::PositionOf(int slot) const {
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].index == slot) return static_cast<int>(i);
  }
  return -1;
}

bool SlotClaims::Available(int slot) const {
  const int p = PositionOf(slot);
  return p >= 0 && (holder_[p] == -1 || holder_[p] == slot);
}

int SlotClaims::Reserve(int slot) {
  const int p = PositionOf(slot);
  if (p < 0 || !Available(slot)) return 0;
  holder_[p] = slot;
  int count = 1;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (static_cast<int>(i) == p || holder_[i] != -1) continue;
    if (slots_[i].device.kind != slots_[p].device.kind) continue;
    holder_[i] = slot;
    ++count;
  }
  return count;
}

std::vector<SlotInfo> SlotClaims::Claim(int slot, int devices) {
  const int p = PositionOf(slot);
  std::vector<SlotInfo> group;
  if (p < 0 || holder_[p] != slot) return group;
  group.push_back(slots_[p]);
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (static_cast<int>(i) == p || holder_[i] != slot) continue;
    if (static_cast<int>(group.size()) < devices) {
      group.push_back(slots_[i]);
    } else {
      holder_[i] = -1;
    }
  }
  if (static_cast<int>(group.size()) < devices) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (static_cast<int>(i) != p && holder_[i] == slot) holder_[i] = -1;
    }
    return {};
  }
  return group;
}

void SlotClaims::Release(int slot) {
  for (int& h : holder_) {
    if (h == slot) h = -1;
  }
}

std::map<std::string, std::string> GroupEnvironment(const std::vector<SlotInfo>& slots,
                                                    const std::string& inherited_cuda,
                                                    const std::string& inherited_npu) {
  std::map<std::string, std::string> env;
  for (const SlotInfo& slot : slots) {
    for (const auto& [key, value] : SlotEnvironment(slot, inherited_cuda, inherited_npu)) {
      auto [it, added] = env.emplace(key, value);
      if (!added && !value.empty()) it->second += "," + value;
    }
  }
  return env;
}

int JobDevices(const std::string& config_json) {
  const nlohmann::json j = nlohmann::json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return 1;
  auto it = j.find("devices");
  if (it == j.end() || !it->is_number_integer()) return 1;
  const int64_t d = it->get<int64_t>();
  return d >= 1 && d <= 1024 ? static_cast<int>(d) : 1;
}

}  // namespace sweepd::agent
