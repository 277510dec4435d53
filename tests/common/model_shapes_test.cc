// Model shapes from config.json (the tiny-llama fixture, GQA) and the built-in
// synthetic config; track selection.
#include "common/model_shapes.h"

#include <cstdint>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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

// Every parameter of a safetensors file, read from its JSON header (8-byte length first),
// and the shape of each tensor by name.
nlohmann::json SafetensorsHeader(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  uint64_t length = 0;
  in.read(reinterpret_cast<char*>(&length), sizeof length);
  std::string header(length, '\0');
  in.read(header.data(), static_cast<std::streamsize>(length));
  return nlohmann::json::parse(header);
}

// Gemma: head_dim (32) is not hidden / heads (16), one KV head, and the embeddings are tied, so
// the checkpoint holds no lm_head: the shapes and the total agree with the file's own tensors.
TEST(ModelShapesTest, ReadsGemmaHeadDimAndTiedEmbeddings) {
  const std::string folder = std::string(SWEEPD_FIXTURES) + "/models/tiny-gemma";
  Result<ModelShape> m = LoadModelShape(folder);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const nlohmann::json header = SafetensorsHeader(folder + "/model.safetensors");
  int64_t total = 0;
  size_t projections = 0;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    projections += name.find("_proj.weight") != std::string::npos;
    int64_t n = 1;
    for (const auto& d : entry["shape"]) n *= d.get<int64_t>();
    total += n;
  }
  EXPECT_FALSE(header.contains("lm_head.weight"));
  EXPECT_EQ(m->total_params, total);
  ASSERT_EQ(m->linears.size(), projections);
  for (const LinearShape& l : m->linears) {
    const auto& shape = header.at(l.name + ".weight")["shape"];
    EXPECT_EQ(l.d_out, shape[0].get<int64_t>()) << l.name;
    EXPECT_EQ(l.d_in, shape[1].get<int64_t>()) << l.name;
  }
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
