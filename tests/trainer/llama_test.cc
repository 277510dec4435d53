// The decoder against transformers' own logits and loss on the tiny fixture checkpoints.
#include "worker/models/llama.h"

#include <string>

#include <gtest/gtest.h>

#include "worker/io/safetensors.h"
#include "worker/models/hf_checkpoint.h"

namespace sweepd::models {
namespace {

const std::string kModels = std::string(SWEEPD_FIXTURES) + "/models/";

void ExpectMatchesReference(const std::string& name) {
  LlamaForCausalLM model = LoadHfModel(kModels + name, torch::kFloat32);
  auto ref = io::SafetensorsFile::Open(kModels + name + "/reference.safetensors");
  torch::NoGradGuard no_grad;
  auto ids = ref.Get("input_ids").to(torch::kInt64);
  auto logits = model->forward(ids);
  auto expected = ref.Get("logits").to(torch::kFloat32);
  ASSERT_EQ(logits.sizes(), expected.sizes());
  EXPECT_LT((logits - expected).abs().max().item<double>(), 1e-4) << name;
  const int64_t t = ids.size(1);
  auto loss = NextTokenLoss(logits.narrow(1, 0, t - 1), ids.narrow(1, 1, t - 1));
  EXPECT_NEAR(loss.item<double>(), ref.Get("loss").item<double>(), 1e-5) << name;
}

TEST(Llama, TinyLlamaLogitsAndLossMatchTransformers) { ExpectMatchesReference("tiny-llama"); }

TEST(Llama, TinyMistralSlidingWindowLogitsMatchTransformers) { ExpectMatchesReference("tiny-mistral"); }

// GeGLU (tanh GELU), embeddings times sqrt(hidden), (1 + w) norms, head_dim != hidden / heads,
// one KV head and tied embeddings.
TEST(Llama, TinyGemmaLogitsAndLossMatchTransformers) { ExpectMatchesReference("tiny-gemma"); }

TEST(Llama, PackedDocumentsSeeOnlyThemselves) {
  auto config = LlamaConfigFromJson(ReadConfigJson(kModels + "tiny-llama"), "config.json");
  ASSERT_TRUE(config.ok());
  LlamaForCausalLM model(*config);
  model->InitializeWeights(7);
  torch::NoGradGuard no_grad;
  auto a = torch::tensor({5, 9, 11, 3}, torch::kInt64).unsqueeze(0);
  auto b = torch::tensor({17, 2, 8}, torch::kInt64).unsqueeze(0);
  auto packed = torch::cat({a, b}, 1);
  auto segments = torch::tensor({0, 0, 0, 0, 1, 1, 1}, torch::kInt64).unsqueeze(0);
  auto logits = model->forward(packed, segments);
  EXPECT_LT((logits.narrow(1, 0, 4) - model->forward(a)).abs().max().item<double>(), 1e-5);
  EXPECT_LT((logits.narrow(1, 4, 3) - model->forward(b)).abs().max().item<double>(), 1e-5);
}

}  // namespace
}  // namespace sweepd::models
