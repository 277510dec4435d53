// Evaluation as lm-evaluation-harness runs it: the tasks' prompts and few-shot examples, the
// GSM8K filters against the reference's extraction cases, bad task and few-shot files named
// by file, line and field, and the fast paths (batched log-likelihoods, batched generation
// with a KV cache) equal to the plain ones in float64.
#include <cmath>
#include <fstream>
#include <functional>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/eval_settings.h"
#include "worker/data/tokenizer.h"
#include "worker/eval/answer_extraction.h"
#include "worker/eval/eval_tasks.h"
#include "worker/eval/generation.h"
#include "worker/eval/loglikelihood.h"
#include "worker/models/hf_checkpoint.h"

namespace sweepd::eval {
namespace {

using nlohmann::json;

const std::string kData = std::string(SWEEPD_SOURCE_DIR) + "/tests/trainer/data/";
const std::string kLmEval = std::string(SWEEPD_FIXTURES) + "/eval/tiny-llama-lmeval/";

json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

int64_t CountLines(const std::string& path) {
  std::ifstream in(path);
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

EvalSpec Spec(const json& entry) {
  std::vector<EvalProblem> problems;
  EvalSpec spec = ReadEvalSpec(entry, problems);
  EXPECT_TRUE(problems.empty()) << (problems.empty() ? "" : problems[0].field + ": " + problems[0].message);
  return spec;
}

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(EvalTasks, BuildsEachTasksPromptAsTheHarness) {
  auto arc = LoadEvalTask(Spec({{"task", "arc_challenge"}, {"data", kData + "arc.jsonl"}}));
  ASSERT_EQ(arc.choices.size(), 1u);
  EXPECT_EQ(arc.choices[0].context, "Question: Which is a gas?\nAnswer:");
  EXPECT_EQ(arc.choices[0].label, 1);
  EXPECT_EQ(arc.choices[0].continuations[1], " oxygen");
  EXPECT_EQ(arc.choices[0].choice_texts[1], "oxygen");
  EXPECT_EQ(arc.score_name, "arc_challenge.acc_norm");

  auto mmlu = LoadEvalTask(Spec({{"task", "mmlu"}, {"data", kData + "mmlu.jsonl"}, {"num_fewshot", 0}}));
  EXPECT_EQ(mmlu.choices[0].context,
            "The following are multiple choice questions (with answers) about elementary mathematics.\n\n"
            "2 + 2 = ?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:");
  EXPECT_EQ(mmlu.choices[0].continuations[1], " B");
  EXPECT_EQ(mmlu.score_name, "mmlu.acc");

  auto hs = LoadEvalTask(Spec({{"task", "hellaswag"}, {"data", kData + "hellaswag.jsonl"}, {"metric", "acc"}}));
  EXPECT_EQ(hs.choices[0].context, "Drinking coffee: A woman sits at a table. She picks up the cup. She");
  EXPECT_EQ(hs.choices[0].continuations[0], "  drinks.");  // "[step]" removed, its space kept
  EXPECT_EQ(hs.score_name, "hellaswag.acc");
}

TEST(EvalTasks, SyntheticTasksAreNamedForWhatTheyAre) {
  EXPECT_EQ(ScoreName(Spec({{"task", "gsm8k"}, {"data", "synthetic:arith"}})), "synthetic-arith.exact_match.strict");
  EXPECT_EQ(ScoreName(Spec({{"task", "arc_challenge"}, {"data", "synthetic:mc"}, {"metric", "acc"}})), "synthetic-mc.acc");
}

TEST(EvalTasks, FewshotPromptsFollowTheReference) {
  const json ref = ReadJson(kLmEval + "reference.json");
  auto gsm = LoadEvalTask(Spec({{"task", "gsm8k"},
                                {"data", kLmEval + "gsm8k.jsonl"},
                                {"fewshot", kLmEval + "gsm8k_fewshot.jsonl"},
                                {"num_fewshot", ref["tasks"]["gsm8k"]["num_fewshot"]}}));
  ASSERT_EQ(gsm.generation.size(), ref["tasks"]["gsm8k"]["items"].size());
  for (size_t i = 0; i < gsm.generation.size(); ++i) {
    EXPECT_EQ(gsm.generation[i].prompt, ref["tasks"]["gsm8k"]["items"][i]["prompt"].get<std::string>()) << i;
  }
  auto mmlu = LoadEvalTask(Spec({{"task", "mmlu"},
                                 {"data", kLmEval + "mmlu.jsonl"},
                                 {"fewshot", kLmEval + "mmlu_dev.jsonl"},
                                 {"num_fewshot", ref["tasks"]["mmlu"]["num_fewshot"]}}));
  for (size_t i = 0; i < mmlu.choices.size(); ++i) {
    EXPECT_EQ(mmlu.choices[i].context, ref["tasks"]["mmlu"]["items"][i]["context"].get<std::string>()) << i;
  }
  auto hs = LoadEvalTask(Spec({{"task", "hellaswag"}, {"data", kLmEval + "hellaswag.jsonl"}}));
  for (size_t i = 0; i < hs.choices.size(); ++i) {
    EXPECT_EQ(hs.choices[i].context, ref["tasks"]["hellaswag"]["items"][i]["context"].get<std::string>()) << i;
    EXPECT_EQ(json(hs.choices[i].continuations), ref["tasks"]["hellaswag"]["items"][i]["continuations"]) << i;
  }
}

TEST(EvalTasks, FewshotSeedDrawsOtherExamplesReproducibly) {
  const std::string fewshot = kLmEval + "gsm8k_fewshot.jsonl";
  const json base = {{"task", "gsm8k"}, {"data", kLmEval + "gsm8k.jsonl"}, {"fewshot", fewshot}, {"num_fewshot", 1}};
  json seeded = base;
  std::set<std::string> prompts;
  for (int seed = 0; seed < 8; ++seed) {
    seeded["fewshot_seed"] = seed;
    const std::string a = LoadEvalTask(Spec(seeded)).generation[0].prompt;
    EXPECT_EQ(a, LoadEvalTask(Spec(seeded)).generation[0].prompt);
    prompts.insert(a);
  }
  EXPECT_GT(prompts.size(), 1u);  // the seeds do not all pick the first row
}

TEST(EvalTasks, TooFewFewshotRowsNameTheFileAndNumFewshot) {
  const std::string fewshot = kLmEval + "gsm8k_fewshot.jsonl";
  const int64_t rows = CountLines(fewshot);
  const std::string e = ErrorOf([&] {
    LoadEvalTask(Spec({{"task", "gsm8k"}, {"data", kLmEval + "gsm8k.jsonl"}, {"fewshot", fewshot}, {"num_fewshot", rows + 1}}));
  });
  EXPECT_NE(e.find(fewshot + ": " + std::to_string(rows) + " rows"), std::string::npos) << e;
  EXPECT_NE(e.find("num_fewshot is " + std::to_string(rows + 1)), std::string::npos) << e;
}

TEST(EvalTasks, FewshotRowMissingAFieldNamesFileLineAndField) {
  const std::string fewshot = kData + "gsm8k_fewshot_missing_answer.jsonl";
  const std::string e = ErrorOf([&] {
    LoadEvalTask(Spec({{"task", "gsm8k"}, {"data", kLmEval + "gsm8k.jsonl"}, {"fewshot", fewshot}, {"num_fewshot", 1}}));
  });
  EXPECT_NE(e.find(fewshot + ":2: missing field 'answer'"), std::string::npos) << e;
}

TEST(EvalTasks, MmluSubjectWithoutDevRowsIsNamed) {
  const std::string dev = kData + "mmlu_dev_other_subject.jsonl";
  const std::string e = ErrorOf([&] {
    LoadEvalTask(Spec({{"task", "mmlu"}, {"data", kData + "mmlu.jsonl"}, {"fewshot", dev}, {"num_fewshot", 1}}));
  });
  EXPECT_NE(e.find(dev + ": 0 dev rows of subject 'elementary_mathematics'"), std::string::npos) << e;
}

TEST(EvalSettings, UnknownMetricAndMissingFewshotSourceAreProblemsOfTheirField) {
  std::vector<EvalProblem> problems;
  ReadEvalSpec({{"task", "arc_challenge"}, {"data", "a.jsonl"}, {"metric", "accuracy"}}, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].field, "metric");
  EXPECT_NE(problems[0].message.find("acc_norm, acc"), std::string::npos) << problems[0].message;
  problems.clear();
  ReadEvalSpec({{"task", "gsm8k"}, {"data", "g.jsonl"}}, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].field, "fewshot");
  problems.clear();
  ReadEvalSpec({{"task", "gsm8k"}, {"data", "g.jsonl"}, {"num_fewshot", 0}, {"colour", 1}}, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].field, "colour");
}

TEST(EvalSettings, HarnessDefaults) {
  const EvalSpec gsm = Spec({{"task", "gsm8k"}, {"data", "g.jsonl"}, {"fewshot", "f.jsonl"}});
  EXPECT_EQ(gsm.num_fewshot, 5);
  EXPECT_EQ(gsm.max_gen_toks, 256);
  EXPECT_FALSE(gsm.add_bos);
  EXPECT_EQ(gsm.until, (std::vector<std::string>{"Question:", "</s>", "<|im_end|>"}));
  EXPECT_EQ(Spec({{"task", "mmlu"}, {"data", "m.jsonl"}, {"fewshot", "d.jsonl"}}).num_fewshot, 5);
  EXPECT_EQ(Spec({{"task", "arc_challenge"}, {"data", "a.jsonl"}}).num_fewshot, 0);
  EXPECT_EQ(Spec({{"task", "hellaswag"}, {"data", "h.jsonl"}}).num_fewshot, 0);
}

TEST(AnswerExtraction, MatchesTheReferenceCases) {
  const json ref = ReadJson(kLmEval + "reference.json");
  ASSERT_FALSE(ref["extraction"].empty());
  for (const json& c : ref["extraction"]) {
    const std::string text = c["text"];
    EXPECT_EQ(StrictMatch(text), c["strict"].get<std::string>()) << text;
    EXPECT_EQ(FlexibleExtract(text), c["flexible"].get<std::string>()) << text;
  }
}

TEST(AnswerExtraction, ExactMatchNormalisesBothSides) {
  EXPECT_TRUE(ExactMatch("3,600", "1200 * 3 = 3600.\n#### 3,600"));
  EXPECT_TRUE(ExactMatch("$12.", "#### 12"));
  EXPECT_FALSE(ExactMatch("[invalid]", "#### 12"));
}

class FastEval : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::NoGradGuard no_grad;
    model_ = models::LoadHfModel(kLmEval + "model", torch::kFloat32);
    model_->to(torch::kFloat64);
    model_->eval();
  }
  models::LlamaForCausalLM model_{nullptr};
  data::ByteTokenizer tokenizer_;  // any ids below the model's vocabulary do
};

TEST_F(FastEval, BatchedLoglikelihoodsEqualOneRequestAtATime) {
  torch::NoGradGuard no_grad;
  std::vector<LoglikRequest> requests;
  for (const char* task : {"arc_challenge", "hellaswag"}) {
    for (const auto& item : LoadEvalTask(Spec({{"task", task}, {"data", kLmEval + task + ".jsonl"}})).choices) {
      for (const auto& c : item.continuations) requests.push_back({item.context, c});
    }
  }
  requests.push_back({"Answer: ", "B"});  // trailing space moves to the continuation
  // One whole row per forward is the plain way; batches of rows, and contexts run once with
  // their choices on the KV cache, must give the same numbers. RMSNorm computes in float32 as
  // transformers' does, so paths whose float64 inputs differ in the last bits can round
  // differently there: the bound is float32's, far below what a wrong mask or position moves.
  constexpr double kTolerance = 1e-7;  // relative
  const auto single = Loglikelihoods(model_, tokenizer_, requests, false, torch::kCPU, 1, /*share_contexts=*/false);
  const auto batched = Loglikelihoods(model_, tokenizer_, requests, false, torch::kCPU, 1 << 14, false);
  const auto shared = Loglikelihoods(model_, tokenizer_, requests, false, torch::kCPU, 1 << 14, true);
  const auto shared_small = Loglikelihoods(model_, tokenizer_, requests, false, torch::kCPU, 200, true);
  ASSERT_EQ(batched.size(), single.size());
  for (size_t i = 0; i < single.size(); ++i) {
    EXPECT_NEAR(batched[i], single[i], kTolerance * std::abs(single[i])) << i;
    EXPECT_NEAR(shared[i], single[i], kTolerance * std::abs(single[i])) << i;
    EXPECT_NEAR(shared_small[i], single[i], kTolerance * std::abs(single[i])) << i;
  }
  const auto moved = EncodeRequest(tokenizer_, {"Answer: ", "B"}, false);
  EXPECT_EQ(moved.context, tokenizer_.Encode("Answer:"));
  EXPECT_EQ(moved.continuation, tokenizer_.Encode(" B"));
}

TEST_F(FastEval, CachedBatchedGenerationEqualsRecomputingEveryToken) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> prompts;
  for (const auto& item : LoadEvalTask(Spec({{"task", "gsm8k"}, {"data", kLmEval + "gsm8k.jsonl"}, {"num_fewshot", 0}})).generation) {
    prompts.push_back(item.prompt);
  }
  prompts.push_back("Q:");  // much shorter than the others: left padding in its batch
  GenerationSettings settings{false, 12, {"Question:"}, 3, true};
  const auto cached = GreedyGenerate(model_, tokenizer_, prompts, settings, torch::kCPU);
  settings.kv_cache = false;
  const auto plain = GreedyGenerate(model_, tokenizer_, prompts, settings, torch::kCPU);
  ASSERT_EQ(cached.size(), plain.size());
  for (size_t i = 0; i < cached.size(); ++i) {
    EXPECT_EQ(cached[i].ids, plain[i].ids) << i;
    EXPECT_EQ(cached[i].text, plain[i].text) << i;
    EXPECT_FALSE(plain[i].ids.empty());
  }
}

}  // namespace
}  // namespace sweepd::eval
