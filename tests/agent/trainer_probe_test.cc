// sweep-worker parses what the real `sweep-train probe` prints: every device has the fields
// the agent plans slots from, and this machine's CPU is among them.
#include <gtest/gtest.h>

#include "worker/agent/device_probe.h"

namespace sweepd::agent {
namespace {

TEST(TrainerProbeTest, TheAgentParsesTheRealTrainersProbe) {
  auto devices = ProbeDevices(std::string(SWEEPD_BIN_DIR) + "/sweep-train", std::chrono::seconds(120));
  ASSERT_TRUE(devices.ok()) << devices.status().message();
  int cpus = 0;
  for (const Device& d : *devices) {
    EXPECT_TRUE(d.kind == "cpu" || d.kind == "cuda" || d.kind == "npu") << d.kind;
    EXPECT_FALSE(d.name.empty());
    if (d.kind == "cuda") {
      EXPECT_GT(d.memory_bytes, 0) << d.name;
    }
    cpus += d.kind == "cpu";
  }
  EXPECT_EQ(cpus, 1);
  auto slots = PlanSlots(*devices, 0);
  ASSERT_TRUE(slots.ok()) << slots.status().message();
  EXPECT_GE(slots->size(), 1u);
}

}  // namespace
}  // namespace sweepd::agent
