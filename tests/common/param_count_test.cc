// Closed-form counts against hand-derived values from docs/methods.md and the reference
// files' tensor shapes (d_in 48, d_out 64).
#include "common/param_count.h"

#include <gtest/gtest.h>

namespace sweepd {
namespace {

using nlohmann::json;

LinearShape Proj(int64_t d_out = 64, int64_t d_in = 48, bool ff = false) {
  LinearShape s;
  s.name = "proj";
  s.d_out = d_out;
  s.d_in = d_in;
  s.feed_forward = ff;
  return s;
}

int64_t Count(const json& settings, const LinearShape& shape = Proj()) {
  Result<int64_t> c = CountTrainableParameters(settings, shape);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? *c : -1;
}

TEST(ParamCountTest, LoraFamilyMatchesFormulas) {
  EXPECT_EQ(Count({{"method", "lora"}, {"r", 4}}), 4 * (48 + 64));
  EXPECT_EQ(Count({{"method", "rslora"}, {"r", 8}}), 8 * (48 + 64));
  EXPECT_EQ(Count({{"method", "dora"}, {"r", 4}}), 4 * (48 + 64) + 64);
  EXPECT_EQ(Count({{"method", "lora"}, {"r", 4}, {"dora", true}}), 4 * (48 + 64) + 64);
  EXPECT_EQ(Count({{"method", "pre_diag"}, {"r", 4}}), 4 * (48 + 64) + 64);
  EXPECT_EQ(Count({{"method", "sora"}, {"r", 4}, {"r_p", 2}}), 4 * (48 + 64) + 2 * 2 * 64 + 64);
  EXPECT_EQ(Count({{"method", "adalora"}, {"init_r", 6}}), 6 * (48 + 64 + 1));
  EXPECT_EQ(Count({{"method", "sorsa"}, {"r", 4}}), 4 * (48 + 64 + 1));
}

TEST(ParamCountTest, RotationMethodsCountStoredTensors) {
  EXPECT_EQ(Count({{"method", "oft"}, {"oft_block_size", 8}}), 6 * 28);
  EXPECT_EQ(Count({{"method", "oft"}, {"oft_block_size", 16}}), 3 * 120);
  EXPECT_EQ(Count({{"method", "boft"}, {"boft_block_size", 4}, {"boft_n_butterfly_factor", 1}}),
            12 * 16 + 64);
  EXPECT_EQ(Count({{"method", "boft"}, {"boft_block_size", 4}, {"boft_n_butterfly_factor", 2}}),
            2 * 12 * 16 + 64);
}

TEST(ParamCountTest, Ia3ScalesOutputsOrFeedForwardInputs) {
  EXPECT_EQ(Count({{"method", "ia3"}}), 64);
  EXPECT_EQ(Count({{"method", "ia3"}}, Proj(64, 48, true)), 48);
  EXPECT_EQ(Count({{"method", "ia3"}, {"feedforward", true}}), 48);
}

TEST(ParamCountTest, JoraCountsAnglesCoreAndMagnitude) {
  const json base = {{"method", "jora"}, {"S_L", 6}, {"S_R", 6}, {"k", 4}};
  json s = base;
  s["core"] = "diag";
  s["magnitude"] = "none";
  EXPECT_EQ(Count(s), 12 + 48);
  s["magnitude"] = "oer_softmax";
  EXPECT_EQ(Count(s), 12 + 48 + 64);
  s["single_sided"] = "left";
  EXPECT_EQ(Count(s), 6 + 48 + 64);
  s = base;
  s["core"] = "block";
  s["block_size"] = 4;
  s["magnitude"] = "none";
  EXPECT_EQ(Count(s), 12 + 12 * 16);
  s["core"] = "lowrank";
  s["lowrank_r"] = 4;
  s["magnitude"] = "ecd_tanh";
  EXPECT_EQ(Count(s), 12 + 4 * (48 + 64) + 64);
  s["core"] = "selective_diag";
  s["magnitude"] = "none";
  EXPECT_EQ(Count(s, Proj(48, 48)), 12 + 8);
  EXPECT_FALSE(CountTrainableParameters(s, Proj()).ok());  // not square
}

TEST(ParamCountTest, ErrorsNameTheProblem) {
  Result<int64_t> c = CountTrainableParameters({{"method", "lorax"}}, Proj());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("lorax"), std::string::npos);
  c = CountTrainableParameters({{"method", "oft"}, {"oft_block_size", 5}}, Proj());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("oft_block_size"), std::string::npos);
  c = CountTrainableParameters({{"method", "lora"}, {"r", "big"}}, Proj());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("'r'"), std::string::npos);
}

}  // namespace
}  // namespace sweepd
