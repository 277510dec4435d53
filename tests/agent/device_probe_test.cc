#include "worker/agent/device_probe.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/agent/trainer_script.h"

namespace sweepd::agent {
namespace {

const std::filesystem::path kData = std::filesystem::path(SWEEPD_SOURCE_DIR) / "tests/agent/data";

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(DeviceProbeTest, OneSlotPerGpu) {
  auto devices = ParseProbeOutput(ReadFile(kData / "probe_two_gpus.json"));
  ASSERT_TRUE(devices.ok()) << devices.status().message();
  auto slots = PlanSlots(*devices, 0);
  ASSERT_TRUE(slots.ok());
  ASSERT_EQ(slots->size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ((*slots)[i].index, i);
    EXPECT_EQ((*slots)[i].device.kind, "cuda");
    EXPECT_EQ((*slots)[i].device.index, i);
    EXPECT_EQ((*slots)[i].device.compute_capability, "9.0");
    EXPECT_GT((*slots)[i].device.memory_bytes, 0);
  }
  EXPECT_EQ(PlanSlots(*devices, 1)->size(), 1u);
  EXPECT_FALSE(PlanSlots(*devices, 3).ok());
}

TEST(DeviceProbeTest, CpuOnlyNodeGetsCpuSlots) {
  auto devices = ParseProbeOutput(R"({"devices":[{"kind":"cpu","index":0,"name":"x"}]})");
  ASSERT_TRUE(devices.ok());
  EXPECT_EQ(PlanSlots(*devices, 0)->size(), 1u);
  auto four = PlanSlots(*devices, 4);
  ASSERT_EQ(four->size(), 4u);
  EXPECT_EQ((*four)[3].index, 3);
  EXPECT_EQ((*four)[3].device.kind, "cpu");
  EXPECT_EQ(PlanSlots({}, 0)->size(), 1u);  // a failed probe still leaves one CPU slot
}

TEST(DeviceProbeTest, RejectsOutputWithoutDevices) {
  EXPECT_FALSE(ParseProbeOutput("not json").ok());
  EXPECT_FALSE(ParseProbeOutput(R"({"gpus":[]})").ok());
  EXPECT_FALSE(ParseProbeOutput(R"({"devices":[{"index":0}]})").ok());
}

TEST(DeviceProbeTest, PinsEachJobToItsSlotsDevice) {
  SlotInfo gpu1{1, {"cuda", 1, "H100", 1, "9.0"}};
  EXPECT_EQ(SlotEnvironment(gpu1, "", "").at("CUDA_VISIBLE_DEVICES"), "1");
  // Under a launcher that already picked GPUs 4 and 6, the second visible one is GPU 6.
  EXPECT_EQ(SlotEnvironment(gpu1, "4,6", "").at("CUDA_VISIBLE_DEVICES"), "6");
  SlotInfo cpu{0, {"cpu", 0, "cpu", 0, ""}};
  EXPECT_EQ(SlotEnvironment(cpu, "", "").at("CUDA_VISIBLE_DEVICES"), "");
  SlotInfo npu{0, {"npu", 0, "Ascend", 0, ""}};
  EXPECT_EQ(SlotEnvironment(npu, "", "").at("ASCEND_RT_VISIBLE_DEVICES"), "0");
}

TEST(DeviceProbeTest, RunsTheTrainersProbe) {
  const auto dir = testing::MakeTempDir();
  const auto trainer = testing::WriteTrainerScript(
      dir, {{"FAKE_PROBE_FILE", (kData / "probe_two_gpus.json").string()}});
  auto devices = ProbeDevices(trainer.string(), std::chrono::seconds(30));
  ASSERT_TRUE(devices.ok()) << devices.status().message();
  EXPECT_EQ(devices->size(), 3u);
  const auto failing = testing::WriteTrainerScript(dir, {{"FAKE_PROBE_EXIT", "1"}}, "bad.sh");
  EXPECT_FALSE(ProbeDevices(failing.string(), std::chrono::seconds(30)).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sweepd::agent
