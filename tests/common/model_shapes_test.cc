// Model shapes from config.json (the tiny-llama fixture, GQA) and the built-in
// synthetic config; track selection.
#include "common/model_shapes.h"

#include <gtest/gtest.h>

namespace sweepd {
namespace {

TEST(ModelShapesTest, SyntheticTinyHasLlamaLayout) {
  Result<ModelShape> m = LoadModelShape("synthetic:tiny");
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->linears.size(), 4u * 7u);
  EXPECT_EQ(m->linears[0].name, "model.layers.0.self_attn.q_proj");
  EXPECT_EQ(m->linears[1].d_out, 2 * 32);  // k_proj: 2 KV heads of 32
  EXPECT_EQ(m->linears[6].name, "model.layers.0.mlp.down_proj");
  EXPECT_EQ(m->linears[6].d_in, 352);
  EXPECT_TRUE(m->linears[6].feed_forward);
  EXPECT_EQ(m->config["vocab_size"], 260);
}

TEST(ModelShapesTest, ReadsCheckpointConfigWithGqa) {
  Result<ModelShape> m = LoadModelShape(std::string(SWEEPD_FIXTURES) + "/models/tiny-llama");
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->linears.size(), 2u * 7u);
  EXPECT_EQ(m->linears[0].d_out, 64);  // 4 heads x 16
  EXPECT_EQ(m->linears[1].d_out, 32);  // 2 KV heads x 16
  EXPECT_EQ(m->linears[4].d_out, 176);
  // embed + lm_head + final norm + per layer (q,k,v,o, gate,up,down, 2 norms)
  const int64_t per_layer = 64 * 64 + 32 * 64 * 2 + 64 * 64 + 3 * 176 * 64 + 2 * 64;
  EXPECT_EQ(m->total_params, 2 * 320 * 64 + 64 + 2 * per_layer);
}

TEST(ModelShapesTest, TracksSelectLayers) {
  Result<ModelShape> m = LoadModelShape("synthetic:tiny");
  ASSERT_TRUE(m.ok());
  TrackSpec a;
  Result<std::vector<LinearShape>> la = SelectTrack(*m, a);
  ASSERT_TRUE(la.ok());
  ASSERT_EQ(la->size(), 8u);
  EXPECT_EQ((*la)[1].name, "model.layers.0.self_attn.v_proj");
  TrackSpec b{"B", {}};
  EXPECT_EQ(SelectTrack(*m, b)->size(), 28u);
  TrackSpec custom{"mlp", {"up_proj", "down_proj"}};
  EXPECT_EQ(SelectTrack(*m, custom)->size(), 8u);
  TrackSpec bad{"x", {"qq_proj"}};
  Result<std::vector<LinearShape>> lb = SelectTrack(*m, bad);
  ASSERT_FALSE(lb.ok());
  EXPECT_NE(lb.status().message().find("qq_proj"), std::string::npos);
}

TEST(ModelShapesTest, UnknownSourcesAreErrors) {
  EXPECT_FALSE(LoadModelShape("synthetic:huge").ok());
  EXPECT_FALSE(LoadModelShape("/nonexistent/folder").ok());
}

}  // namespace
}  // namespace sweepd
