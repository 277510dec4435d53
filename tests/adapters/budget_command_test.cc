// `sweep-train budget` on Llama-2-7B shapes (tests/adapters/data/llama-2-7b/config.json, the
// model's published config): every knobbed method matches LoRA r=16 within ±5% on tracks A and
// B, or says why it cannot.
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/budget.h"
#include "common/model_shapes.h"
#include "worker/trainer/commands.h"

namespace sweepd {
namespace {

using nlohmann::json;

const std::string kLlama7b = std::string(SWEEPD_SOURCE_DIR) + "/tests/adapters/data/llama-2-7b";

// Runs `sweep-train budget` in-process; its exit status, stdout and stderr.
int RunBudgetCommand(std::vector<std::string> extra, std::string* out, std::string* err) {
  CLI::App app;
  int exit_code = -1;
  trainer::AddBudgetCommand(app, &exit_code);
  std::vector<std::string> args = {"sweep-train", "budget", "--model", kLlama7b, "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  std::ostringstream captured_out, captured_err;
  std::streambuf* old_out = std::cout.rdbuf(captured_out.rdbuf());
  std::streambuf* old_err = std::cerr.rdbuf(captured_err.rdbuf());
  app.parse(static_cast<int>(argv.size()), argv.data());
  std::cout.rdbuf(old_out);
  std::cerr.rdbuf(old_err);
  *out = captured_out.str();
  *err = captured_err.str();
  return exit_code;
}

std::vector<json> RunBudget(std::vector<std::string> extra) {
  CLI::App app;
  int exit_code = -1;
  trainer::AddBudgetCommand(app, &exit_code);
  std::vector<std::string> args = {"sweep-train", "budget", "--model",
                                   std::string(SWEEPD_SOURCE_DIR) + "/tests/adapters/data/llama-2-7b", "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  std::ostringstream captured;
  std::streambuf* old = std::cout.rdbuf(captured.rdbuf());
  app.parse(static_cast<int>(argv.size()), argv.data());
  std::cout.rdbuf(old);
  EXPECT_EQ(exit_code, 0);
  std::vector<json> rows;
  std::istringstream lines(captured.str());
  for (std::string line; std::getline(lines, line);) rows.push_back(json::parse(line));
  return rows;
}

TEST(BudgetCommandTest, EveryMethodMatchedOrExplainedOnLlama7b) {
  std::vector<json> rows = RunBudget({});
  ASSERT_FALSE(rows.empty());
  int matched_a = 0, matched_b = 0;
  for (const json& r : rows) {
    const double ratio = r["ratio"].get<double>();
    if (r["found"].get<bool>()) {
      EXPECT_NEAR(ratio, 1.0, 0.05) << r.dump();
      (r["track"] == "A" ? matched_a : matched_b)++;
    } else {
      EXPECT_FALSE(r["reason"].get<std::string>().empty()) << r.dump();
    }
  }
  // LoRA r=16 reference: A = 32 layers x 2 x 16 x 8192.
  EXPECT_EQ(rows.front()["reference_count"], 8388608);
  EXPECT_GE(matched_a, 10);
  EXPECT_GE(matched_b, 8);
}

TEST(BudgetCommandTest, LoraMatchesItselfAndDoraNeedsASmallerRank) {
  std::vector<json> rows = RunBudget({"--track", "A", "--method", R"({"method":"lora"})", "--method",
                                      R"({"method":"dora"})"});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["settings"]["r"], 16);
  EXPECT_EQ(rows[0]["count"], 8388608);
  EXPECT_TRUE(rows[1]["found"].get<bool>());
}

// JORA's S sets S_L = S_R; a row that gives the size knob is counted as it is, not searched.
TEST(BudgetCommandTest, JoraSCountsBothSidesAsGiven) {
  std::vector<json> rows =
      RunBudget({"--track", "A", "--method", R"({"method":"jora","S":96,"k":24})"});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["settings"]["S_L"], 96) << rows[0].dump();
  EXPECT_EQ(rows[0]["settings"]["S_R"], 96) << rows[0].dump();
  EXPECT_FALSE(rows[0]["settings"].contains("S")) << rows[0].dump();
  Result<ModelShape> model = LoadModelShape(kLlama7b);
  ASSERT_TRUE(model.ok()) << model.status().message();
  Result<std::vector<LinearShape>> layers = SelectTrack(*model, TrackSpec{"A", {}});
  ASSERT_TRUE(layers.ok());
  Result<int64_t> expected = CountForLayers({{"method", "jora"}, {"S_L", 96}, {"S_R", 96}, {"k", 24}}, *layers);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(rows[0]["count"].get<int64_t>(), *expected);
  Result<int64_t> defaults = CountForLayers({{"method", "jora"}, {"k", 24}}, *layers);
  ASSERT_TRUE(defaults.ok());
  EXPECT_NE(*expected, *defaults) << "S=96 must not count as the default S_L = S_R";
}

TEST(BudgetCommandTest, AnUnknownOptionIsRefusedNamingIt) {
  std::string out, err;
  EXPECT_EQ(RunBudgetCommand({"--track", "A", "--method", R"({"method":"jora","SL":96})"}, &out, &err), 2);
  EXPECT_NE(err.find("unknown option 'SL' of jora"), std::string::npos) << err;
  EXPECT_NE(err.find("S_L"), std::string::npos) << "lists the known options: " << err;
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace sweepd
