// `sweep-train conformance DIR` on the lm-evaluation-harness eval folder: the fixture passes;
// a copy whose reference or task file is changed fails, naming the task and the item.
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace sweepd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using sweepd::testing::MakeTempDir;
using sweepd::testing::RunCommand;

const std::string kTrain = std::string(SWEEPD_BIN_DIR) + "/sweep-train";
const std::string kLmEval = std::string(SWEEPD_FIXTURES) + "/eval/tiny-llama-lmeval";

// A copy of the fixture folder in which `edit` changes reference.json.
std::string TamperedCopy(const std::function<void(json&)>& edit) {
  const std::string dir = MakeTempDir("eval-conformance") + "/copy";
  fs::copy(kLmEval, dir, fs::copy_options::recursive);
  json ref;
  {
    std::ifstream in(dir + "/reference.json");
    ref = json::parse(in);
  }
  edit(ref);
  std::ofstream(dir + "/reference.json") << ref.dump(1);
  return dir;
}

TEST(EvalConformance, TheHarnessFixturePasses) {
  std::string out;
  const int status = RunCommand({kTrain, "conformance", kLmEval}, &out);
  EXPECT_EQ(status, 0) << out;
  for (const char* task : {"gsm8k", "arc_challenge", "mmlu", "hellaswag", "extraction"}) {
    EXPECT_NE(out.find(std::string(task) + " ("), std::string::npos) << task << "\n" << out;
  }
  EXPECT_NE(out.find("largest log-likelihood error"), std::string::npos) << out;
}

TEST(EvalConformance, AChangedLoglikelihoodFails) {
  const std::string dir = TamperedCopy([](json& ref) {
    double& ll = ref["tasks"]["arc_challenge"]["items"][2]["loglik"][1].get_ref<double&>();
    ll *= 1.0 + 1e-5;
  });
  std::string out;
  EXPECT_EQ(RunCommand({kTrain, "conformance", dir}, &out), 1) << out;
  EXPECT_NE(out.find("arc_challenge (0-shot"), std::string::npos) << out;
  EXPECT_NE(out.find("relative (max 1e-06)  FAIL"), std::string::npos) << out;
}

TEST(EvalConformance, AChangedGenerationAndExtractionFailNamingTheItem) {
  const std::string dir = TamperedCopy([](json& ref) {
    auto& ids = ref["tasks"]["gsm8k"]["items"][1]["generated_ids"];
    ids[0] = ids[0].get<int64_t>() + 1;
    ref["extraction"][0]["flexible"] = "41.";
  });
  std::string out;
  EXPECT_EQ(RunCommand({kTrain, "conformance", dir}, &out), 1) << out;
  EXPECT_NE(out.find("item 1: generated ids"), std::string::npos) << out;
  EXPECT_NE(out.find("case 0"), std::string::npos) << out;
}

TEST(EvalConformance, AChangedTaskFileFailsAtItsPrompt) {
  const std::string dir = TamperedCopy([](json&) {});
  std::string rows;
  {
    std::ifstream in(dir + "/hellaswag.jsonl");
    rows.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto at = rows.find("Baking");
  ASSERT_NE(at, std::string::npos);
  rows.replace(at, 6, "Baked");
  std::ofstream(dir + "/hellaswag.jsonl") << rows;
  std::string out;
  EXPECT_EQ(RunCommand({kTrain, "conformance", dir}, &out), 1) << out;
  EXPECT_NE(out.find("item 0: context"), std::string::npos) << out;
}

}  // namespace
}  // namespace sweepd
