// BudgetSolver on Llama-2-7B shapes (written as a config here, like a config.json):
// LoRA r=16 is the reference; matched settings land within ±5%.
#include "common/budget.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/model_shapes.h"

namespace sweepd {
namespace {

using nlohmann::json;

std::vector<LinearShape> Llama7bTrack(const std::string& track) {
  // Only the shape fields matter here; LoadModelShape reads real config.json files the same way.
  static const ModelShape model = [] {
    const std::string dir = ::testing::TempDir() + "/llama7b";
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/config.json") << json{{"hidden_size", 4096}, {"intermediate_size", 11008},
                                                {"num_hidden_layers", 32}, {"num_attention_heads", 32},
                                                {"num_key_value_heads", 32}, {"vocab_size", 32000}}
                                               .dump();
    return *LoadModelShape(dir);
  }();
  return *SelectTrack(model, TrackSpec{track, {}});
}

TEST(BudgetTest, LoraR16OnTrackA) {
  const auto layers = Llama7bTrack("A");
  EXPECT_EQ(*CountForLayers({{"method", "lora"}, {"r", 16}}, layers), 32 * 2 * 16 * (4096 + 4096));
}

TEST(BudgetTest, MatchesEveryKnobbedMethodWithinTolerance) {
  for (const std::string track : {"A", "B"}) {
    const auto layers = Llama7bTrack(track);
    const int64_t ref = *CountForLayers({{"method", "lora"}, {"r", 16}}, layers);
    BudgetSolver solver(layers, ref, 0.05);
    for (const json& s : {json{{"method", "dora"}}, json{{"method", "sorsa"}}, json{{"method", "adalora"}},
                          json{{"method", "pre_diag"}}, json{{"method", "sora"}, {"r_p", 4}}}) {
      Result<BudgetMatch> m = solver.Match(s);
      ASSERT_TRUE(m.ok()) << m.status().message();
      ASSERT_TRUE(m->found) << track << " " << s.dump() << ": " << m->reason;
      EXPECT_TRUE(solver.WithinTolerance(m->count));
      EXPECT_EQ(*CountForLayers(m->settings, layers), m->count);
    }
  }
}

TEST(BudgetTest, OftBlockSizeMatchesTrackAButNotB) {
  auto layers = Llama7bTrack("A");
  BudgetSolver a(layers, *CountForLayers({{"method", "lora"}, {"r", 16}}, layers), 0.05);
  Result<BudgetMatch> m = a.Match({{"method", "oft"}});
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(m->found) << m->reason;
  EXPECT_EQ(m->settings["oft_block_size"], 64);  // 64 layers x 4096 x 63 / 2
  layers = Llama7bTrack("B");
  BudgetSolver b(layers, *CountForLayers({{"method", "lora"}, {"r", 16}}, layers), 0.05);
  m = b.Match({{"method", "oft"}});
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->found);
  EXPECT_NE(m->reason.find("oft_block_size=64"), std::string::npos) << m->reason;
}

TEST(BudgetTest, UnreachableBudgetSaysWhy) {
  const auto layers = Llama7bTrack("A");
  BudgetSolver solver(layers, *CountForLayers({{"method", "lora"}, {"r", 16}}, layers), 0.05);
  Result<BudgetMatch> m = solver.Match({{"method", "ia3"}});
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->found);
  EXPECT_NE(m->reason.find("no size knob"), std::string::npos);
  m = solver.Match({{"method", "jora"}, {"core", "diag"}});
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->found);
  EXPECT_NE(m->reason.find("reachable"), std::string::npos) << m->reason;
  m = solver.Match({{"method", "jora"}, {"core", "lowrank"}}, "lowrank_r");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->found) << m->reason;
}

}  // namespace
}  // namespace sweepd
