// sweepctl as a real process: help and version, exit statuses, validate's problem lines,
// and every read-only command offline on a fixture database.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "store/migrations.h"
#include "tests/client/fixture_db.h"
#include "tests/support/process.h"

namespace sweepd::client {
namespace {

using sweepd::testing::MakeTempDir;
using sweepd::testing::RunCommand;

const std::string kSweepctl = std::string(SWEEPD_BIN_DIR) + "/sweepctl";
const std::string kSource = SWEEPD_SOURCE_DIR;

// One CSV line into fields; quoted fields may hold commas.
std::vector<std::string> SplitCsv(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (char ch : line) {
    if (ch == '"') {
      quoted = !quoted;
    } else if (ch == ',' && !quoted) {
      fields.emplace_back();
    } else {
      fields.back() += ch;
    }
  }
  return fields;
}

class SweepctlCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    db_ = MakeTempDir("sweepctl-cli-") + "/sweepd.db";
    testing::BuildFixtureDb(db_, kSource + "/tests/client/fixtures/golden_results.json");
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(std::filesystem::path(db_).parent_path()); }
  // Runs sweepctl with `args`; returns its exit status, output (stdout and stderr) in *out.
  static int Run(const std::vector<std::string>& args, std::string* out) {
    std::vector<std::string> argv = {kSweepctl};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, out);
  }
  static inline std::string db_;
};

TEST_F(SweepctlCli, HelpAndVersionExitZero) {
  std::string out;
  EXPECT_EQ(Run({"--version"}, &out), 0);
  EXPECT_NE(out.find("sweepctl "), std::string::npos) << out;
  EXPECT_EQ(Run({"--help"}, &out), 0);
  EXPECT_NE(out.find("export"), std::string::npos) << out;
  EXPECT_EQ(Run({"export", "--help"}, &out), 0);
  EXPECT_NE(out.find("--group-by"), std::string::npos) << out;
}

TEST_F(SweepctlCli, BadArgumentsExitTwo) {
  std::string out;
  EXPECT_EQ(Run({"--no-such-flag", "list"}, &out), 2) << out;
  EXPECT_EQ(Run({}, &out), 2) << out;
  EXPECT_EQ(Run({"--db", db_, "export", "golden", "--format", "docx"}, &out), 2) << out;
  EXPECT_NE(out.find("latex"), std::string::npos) << "names the valid formats: " << out;
  EXPECT_EQ(Run({"--db", db_, "export", "golden", "--filter", "nonsense"}, &out), 2) << out;
}

TEST_F(SweepctlCli, ValidateAcceptsTheDemoSpec) {
  std::string out;
  EXPECT_EQ(Run({"validate", kSource + "/sweeps/demo-cpu.yaml"}, &out), 0) << out;
  EXPECT_NE(out.find("ok, sweep 'demo'"), std::string::npos) << out;
}

TEST_F(SweepctlCli, ValidateAcceptsLoraPlus) {
  std::string out;
  EXPECT_EQ(Run({"validate", kSource + "/tests/client/fixtures/lora_plus.yaml"}, &out), 0) << out;
  EXPECT_NE(out.find("ok, sweep 'lora-plus'"), std::string::npos) << out;
}

TEST_F(SweepctlCli, ValidatePrintsEveryProblemWithItsPositionAndExitsThree) {
  std::string out;
  const std::string spec = kSource + "/tests/client/fixtures/bad_spec.yaml";
  EXPECT_EQ(Run({"validate", spec}, &out), 3) << out;
  const std::regex line(R"(bad_spec\.yaml:[0-9]+:[0-9]+: [^:]+: .+)");
  int problems = 0;
  for (std::sregex_iterator it(out.begin(), out.end(), line), end; it != end; ++it) ++problems;
  EXPECT_GE(problems, 2) << out;
  EXPECT_EQ(Run({"--output", "json", "validate", spec}, &out), 3) << out;
  auto doc = nlohmann::json::parse(out);
  EXPECT_FALSE(doc[0]["valid"].get<bool>());
  EXPECT_GE(doc[0]["problems"].size(), 2u);
}

TEST_F(SweepctlCli, DryRunShowsTheGridWithBudgets) {
  std::string out;
  EXPECT_EQ(Run({"submit", "--dry-run", kSource + "/sweeps/demo-cpu.yaml"}, &out), 0) << out;
  EXPECT_NE(out.find("LoRA"), std::string::npos) << out;
  EXPECT_NE(out.find("DoRA"), std::string::npos) << out;
  EXPECT_NE(out.find("% of "), std::string::npos) << "the budget column: " << out;
  EXPECT_NE(out.find("nothing was submitted"), std::string::npos) << out;
}

TEST_F(SweepctlCli, UnreachableCoordinatorExitsFour) {
  std::string out;
  EXPECT_EQ(Run({"--coordinator", "127.0.0.1:1", "list"}, &out), 4) << out;
  EXPECT_NE(out.find("cannot reach sweepd at 127.0.0.1:1"), std::string::npos) << out;
}

TEST_F(SweepctlCli, OfflineListStatusWorkersAndLogs) {
  std::string out;
  EXPECT_EQ(Run({"--db", db_, "list"}, &out), 0) << out;
  EXPECT_NE(out.find("golden"), std::string::npos) << out;
  EXPECT_EQ(Run({"--db", db_, "status", "golden"}, &out), 0) << out;
  EXPECT_NE(out.find("10/11 succeeded"), std::string::npos) << out;
  EXPECT_NE(out.find("out_of_memory"), std::string::npos) << out;
  EXPECT_EQ(Run({"--db", db_, "workers"}, &out), 0) << out;
  EXPECT_NE(out.find("node1"), std::string::npos) << out;
  EXPECT_EQ(Run({"--db", db_, "logs", "j-lora-s1"}, &out), 0) << out;
  EXPECT_NE(out.find("step 20/20"), std::string::npos) << out;
  EXPECT_NE(out.find("eval final  gsm8k 29.00"), std::string::npos) << out;
  EXPECT_EQ(Run({"--db", db_, "logs", "j-lora16-s0"}, &out), 0) << out;
  EXPECT_NE(out.find("out of memory allocating"), std::string::npos) << "the stderr tail: " << out;
}

// A log larger than gRPC's 4 MB message limit (50 points of 100 kB) prints whole, through a
// real sweepd (GetJobLog answers it in pages of about 1 MB) and from the database file.
TEST_F(SweepctlCli, LogsOfAJobLongerThanOneMessagePrintEveryPoint) {
  const std::string dir = MakeTempDir("sweepctl-long-log-");
  const std::string db = dir + "/sweepd.db";
  std::filesystem::copy_file(db_, db);
  testing::ExecSql(db,
                   "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) "
                   "INSERT INTO metric_points (attempt_id, seq, job_id, type, step, json, stored_ms) "
                   "SELECT 'j-lora-s1-a1', 1000 + i, 'j-lora-s1', 'step', 1000 + i, "
                   "json_object('type', 'step', 'step', 1000 + i, 'note', printf('%.*c', 100000, 'x')), 0 FROM n");
  auto count_big = [](const std::string& out, int64_t* last_step) {
    size_t big = 0;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      if (line.find("xxxxxxxxxx") == std::string::npos) continue;
      ++big;
      *last_step = nlohmann::json::parse(line).at("step").get<int64_t>();
    }
    return big;
  };
  std::string out;
  int64_t last = 0;
  ASSERT_EQ(Run({"--db", db, "--output", "json", "logs", "--no-follow", "j-lora-s1"}, &out), 0) << out.substr(0, 400);
  EXPECT_EQ(count_big(out, &last), 50u);
  EXPECT_EQ(last, 1050);

  sweepd::testing::ChildProcess sweepd(
      {std::string(SWEEPD_BIN_DIR) + "/sweepd", "--db", db, "--listen", "127.0.0.1:0", "--port-file", dir + "/addr"},
      dir + "/sweepd.log");
  const std::string addr = sweepd::testing::WaitForPortFile(dir + "/addr", std::chrono::seconds(30));
  ASSERT_FALSE(addr.empty()) << sweepd::testing::ReadFile(dir + "/sweepd.log");
  ASSERT_EQ(Run({"--coordinator", addr, "--output", "json", "logs", "--no-follow", "j-lora-s1"}, &out), 0)
      << out.substr(0, 400);
  last = 0;
  EXPECT_EQ(count_big(out, &last), 50u);
  EXPECT_EQ(last, 1050);
  sweepd.Stop();
  std::filesystem::remove_all(dir);
}

TEST_F(SweepctlCli, OfflineErrorsSayWhatIsMissing) {
  std::string out;
  EXPECT_EQ(Run({"--db", db_, "status", "nope"}, &out), 5) << out;
  EXPECT_EQ(Run({"--db", db_, "logs", "j-nope"}, &out), 5) << out;
  EXPECT_EQ(Run({"--db", "/nonexistent/sweepd.db", "list"}, &out), 5) << out;
  EXPECT_EQ(Run({"--db", db_, "cancel", "golden"}, &out), 7) << out;
  EXPECT_NE(out.find("--coordinator"), std::string::npos) << out;
}

TEST_F(SweepctlCli, DatabaseOfANewerSchemaExitsFourNamingBothVersions) {
  const std::string path = MakeTempDir("sweepctl-newer-") + "/sweepd.db";
  testing::BuildFixtureDb(path, kSource + "/tests/client/fixtures/golden_results.json");
  // As a later sweepd's migration would leave it.
  testing::ExecSql(path,
                   "INSERT INTO schema_version (version, name, applied_ms) "
                   "SELECT MAX(version) + 1, 'from_a_newer_sweepd', 0 FROM schema_version");
  const int64_t newest = store::NewestSchemaVersion();
  std::string out;
  EXPECT_EQ(Run({"--db", path, "list"}, &out), 4) << out;
  EXPECT_NE(out.find(path + " has schema version " + std::to_string(newest + 1) +
                     "; this sweepctl reads up to " + std::to_string(newest)),
            std::string::npos)
      << out;
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

TEST_F(SweepctlCli, DatabaseThatIsNotSqliteExitsFour) {
  const std::string dir = MakeTempDir("sweepctl-notdb-");
  const std::string path = dir + "/sweepd.db";
  std::ofstream(path) << "results: not a database\n";
  std::string out;
  EXPECT_EQ(Run({"--db", path, "results", "golden"}, &out), 4) << out;
  EXPECT_NE(out.find(path + " is not a SQLite database"), std::string::npos) << out;
  EXPECT_EQ(Run({"--db", dir, "list"}, &out), 4) << "a folder: " << out;
  std::filesystem::remove_all(dir);
}

TEST_F(SweepctlCli, ReadingADatabaseCreatesNoWalOrShmFile) {
  const std::string path = MakeTempDir("sweepctl-ro-") + "/sweepd.db";
  testing::BuildFixtureDb(path, kSource + "/tests/client/fixtures/golden_results.json");
  ASSERT_FALSE(std::filesystem::exists(path + "-wal"));
  const std::string before = sweepd::testing::ReadFile(path);
  std::string out;
  EXPECT_EQ(Run({"--db", path, "status", "golden"}, &out), 0) << out;
  EXPECT_EQ(Run({"--db", path, "results", "golden"}, &out), 0) << out;
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(path + "-shm"));
  EXPECT_EQ(sweepd::testing::ReadFile(path), before) << "the file was written";
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

TEST_F(SweepctlCli, ResultsCsvHasOneLinePerJobWithFiniteLossAndPositiveThroughput) {
  std::string out;
  ASSERT_EQ(Run({"--db", db_, "results", "--format", "csv"}, &out), 0) << out;
  std::istringstream lines(out);
  std::string header, line;
  std::getline(lines, header);
  std::vector<std::string> names;
  {
    std::istringstream h(header);
    for (std::string f; std::getline(h, f, ',');) names.push_back(f);
  }
  const auto col = [&](const std::string& n) {
    return static_cast<size_t>(std::find(names.begin(), names.end(), n) - names.begin());
  };
  ASSERT_LT(col("final_loss"), names.size()) << header;
  ASSERT_LT(col("tokens_per_s"), names.size()) << header;
  int rows = 0;
  while (std::getline(lines, line)) {
    const std::vector<std::string> f = SplitCsv(line);
    EXPECT_TRUE(std::isfinite(std::stod(f.at(col("final_loss"))))) << line;
    EXPECT_GT(std::stod(f.at(col("tokens_per_s"))), 0) << line;
    ++rows;
  }
  EXPECT_EQ(rows, 9) << "nine succeeded training jobs; base evaluation and failed job left out\n" << out;
}

TEST_F(SweepctlCli, PlotWritesSvgForBothKinds) {
  std::string out;
  ASSERT_EQ(Run({"--db", db_, "plot", "golden", "--kind", "tradeoff"}, &out), 0) << out;
  EXPECT_NE(out.find("<svg"), std::string::npos);
  EXPECT_NE(out.find("ARC-C"), std::string::npos) << "the plasticity axis label: " << out;
  int points = 0;
  for (size_t p = out.find("<circle"); p != std::string::npos; p = out.find("<circle", p + 1)) ++points;
  EXPECT_EQ(points, 6) << "three configurations: one point and one legend mark each";
  ASSERT_EQ(Run({"--db", db_, "plot", "golden", "--kind", "sweep", "--axis", "seed", "--metric", "tradeoff"}, &out), 0)
      << out;
  EXPECT_NE(out.find("<path"), std::string::npos) << out;
  EXPECT_EQ(Run({"--db", db_, "plot", "golden", "--kind", "sweep"}, &out), 2) << out;
}

}  // namespace
}  // namespace sweepd::client
