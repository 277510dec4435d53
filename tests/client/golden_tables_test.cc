// Golden tables: a database filled with known results (fixtures/golden_results.json,
// through the real schema) renders exactly the expected Markdown, CSV and LaTeX tables
// (golden/). Set SWEEPD_UPDATE_GOLDEN=1 to rewrite the expected files after a deliberate
// change, and review the diff.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/client/fixture_db.h"
#include "tests/client/latex_check.h"
#include "tests/support/process.h"

namespace sweepd::client {
namespace {

using sweepd::testing::MakeTempDir;
using sweepd::testing::RunCommand;
using testing::BuildFixtureDb;
using testing::ReadTextFile;

const std::string kSweepctl = std::string(SWEEPD_BIN_DIR) + "/sweepctl";
const std::string kFixture = std::string(SWEEPD_SOURCE_DIR) + "/tests/client/fixtures/golden_results.json";
const std::string kGoldenDir = std::string(SWEEPD_SOURCE_DIR) + "/tests/client/golden/";

class GoldenTables : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = MakeTempDir("sweepctl-golden-");
    db_ = dir_ + "/golden.db";
    BuildFixtureDb(db_, kFixture);
  }

  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

  // Runs sweepctl on the fixture database; stdout only (stderr goes to a file).
  static std::string Sweepctl(const std::vector<std::string>& args, int* status = nullptr) {
    std::vector<std::string> argv = {"/bin/sh", "-c", ""};
    std::string cmd = "'" + kSweepctl + "' --db '" + db_ + "'";
    for (const auto& a : args) cmd += " '" + a + "'";
    argv[2] = cmd + " 2>'" + dir_ + "/stderr.txt'";
    std::string out;
    int rc = RunCommand(argv, &out);
    if (status) *status = rc;
    EXPECT_EQ(rc, 0) << cmd << "\n" << out << ReadTextFile(dir_ + "/stderr.txt");
    return out;
  }

  static void ExpectGolden(const std::string& name, const std::string& actual) {
    const std::string path = kGoldenDir + name;
    if (std::getenv("SWEEPD_UPDATE_GOLDEN") != nullptr) {
      std::ofstream(path, std::ios::binary) << actual;
    }
    EXPECT_EQ(actual, ReadTextFile(path)) << "golden file " << path
                                          << " differs; SWEEPD_UPDATE_GOLDEN=1 rewrites it";
  }

  static inline std::string dir_;
  static inline std::string db_;
};

TEST_F(GoldenTables, MainTableMatchesMarkdownCsvAndLatex) {
  ExpectGolden("main.md", Sweepctl({"export", "golden", "--format", "md"}));
  ExpectGolden("main.csv", Sweepctl({"export", "golden", "--format", "csv"}));
  ExpectGolden("main.tex", Sweepctl({"export", "golden", "--format", "latex"}));
}

TEST_F(GoldenTables, TableKindsMatchTheirGoldenFiles) {
  ExpectGolden("ablation.md", Sweepctl({"export", "golden", "--kind", "ablation", "--format", "md"}));
  ExpectGolden("sweep.md", Sweepctl({"export", "golden", "--kind", "sweep", "--filter", "method=jora",
                                     "--axis", "S_L,k", "--format", "md"}));
  ExpectGolden("budget.md", Sweepctl({"export", "golden", "--kind", "budget", "--format", "md"}));
  ExpectGolden("budget.tex", Sweepctl({"export", "golden", "--kind", "budget", "--format", "latex"}));
  ExpectGolden("jobs.csv", Sweepctl({"results", "golden", "--format", "csv"}));
  ExpectGolden("jobs.txt", Sweepctl({"results", "golden"}));
}

// The numbers themselves, recomputed here from the fixture: mean and sample std (n - 1).
TEST_F(GoldenTables, MeansAndSampleStdsComeFromTheSeeds) {
  const auto fixture = nlohmann::json::parse(ReadTextFile(kFixture));
  std::map<std::string, std::vector<double>> arc_by_method;
  for (const auto& j : fixture["jobs"]) {
    if (j["kind"] != "train" || j["result"].is_null()) continue;
    arc_by_method[j["method"]].push_back(j["result"]["scores"]["arc_challenge"].get<double>());
  }
  const auto doc = nlohmann::json::parse(Sweepctl({"export", "golden", "--format", "json"}));
  ASSERT_EQ(doc["rows"].size(), arc_by_method.size());
  for (const auto& row : doc["rows"]) {
    const std::string label = row["method"];
    const std::string method = label.substr(0, label.find('('));
    std::vector<double> values;
    for (const auto& [m, v] : arc_by_method) {
      std::string lower = method;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (m == lower) values = v;
    }
    ASSERT_EQ(values.size(), 3u) << label;
    double mean = (values[0] + values[1] + values[2]) / 3;
    double ss = 0;
    for (double v : values) ss += (v - mean) * (v - mean);
    EXPECT_NEAR(row["score_arc_challenge"]["mean"].get<double>(), mean, 1e-9) << label;
    EXPECT_NEAR(row["score_arc_challenge"]["std"].get<double>(), std::sqrt(ss / 2), 1e-9) << label;
    EXPECT_EQ(row["n"].get<double>(), 3) << label;
  }
}

TEST_F(GoldenTables, LatexPassesTheStrictCheckAndCompiles) {
  for (const std::string kind : {"main", "ablation", "budget", "sweep"}) {
    const std::string tex = Sweepctl({"export", "golden", "--kind", kind, "--format", "latex"});
    const auto problems = testing::CheckLatexTable(tex);
    for (const auto& p : problems) ADD_FAILURE() << kind << ": " << p << "\n" << tex;
    const std::string compiled = testing::CompileWithPdflatex(tex, dir_);
    if (compiled == "skip") continue;  // the strict check above stands in for pdflatex
    EXPECT_EQ(compiled, "") << kind;
  }
  // The fragment for \input into a paper passes the same check.
  const std::string fragment = Sweepctl({"export", "golden", "--format", "latex", "--fragment"});
  EXPECT_EQ(fragment.find("\\documentclass"), std::string::npos);
  for (const auto& p : testing::CheckLatexTable(fragment)) ADD_FAILURE() << "fragment: " << p << "\n" << fragment;
}

TEST_F(GoldenTables, StrictLatexCheckCatchesBrokenTables) {
  const std::string good = ReadTextFile(kGoldenDir + "main.tex");
  ASSERT_TRUE(testing::CheckLatexTable(good).empty());
  std::string missing_cell = good;
  missing_cell.replace(missing_cell.find(" & "), 3, " ");
  EXPECT_FALSE(testing::CheckLatexTable(missing_cell).empty());
  std::string underscore = good;
  underscore.replace(underscore.find("LoRA"), 4, "Lo_RA");
  EXPECT_FALSE(testing::CheckLatexTable(underscore).empty());
  std::string percent = good;
  percent.replace(percent.find("\\%"), 2, "%");
  EXPECT_FALSE(testing::CheckLatexTable(percent).empty());
  std::string no_rule = good;
  no_rule.replace(no_rule.find("\\midrule"), 8, "\\hline");
  EXPECT_FALSE(testing::CheckLatexTable(no_rule).empty());
}

TEST_F(GoldenTables, FiltersGroupingAndColumnsShapeTheTable) {
  const std::string csv = Sweepctl({"export", "golden", "--format", "csv", "--group-by", "method",
                                    "--columns", "tradeoff,tokens_per_s", "--filter", "method!=dora"});
  EXPECT_EQ(csv,
            "method,n,tradeoff,tradeoff_std,tokens_per_s,tokens_per_s_std\n"
            "lora,3,10,1.732050808,1100,100\n"
            "jora,3,9,1,1300,50\n");
  int status = 0;
  std::string out;
  status = RunCommand({kSweepctl, "--db", db_, "export", "golden", "--columns", "nope"}, &out);
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("delta_gsm8k"), std::string::npos) << "the error lists the valid columns: " << out;
}

}  // namespace
}  // namespace sweepd::client
