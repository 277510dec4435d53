// End to end: the real sweepd, sweep-worker, sweep-train and sweepctl on loopback run
// the demo sweep; the stored results are read back from the SQLite file.
#include <sys/wait.h>

#include <cmath>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/client/latex_check.h"
#include "tests/support/process.h"
#include "tests/support/sqlite_rows.h"

namespace sweepd {
namespace {

using sweepd::testing::ChildProcess;
using sweepd::testing::MakeTempDir;
using sweepd::testing::ReadFile;
using sweepd::testing::RunCommand;
using sweepd::testing::WaitForPortFile;
using namespace std::chrono_literals;

const std::string kBin = SWEEPD_BIN_DIR;

using sweepd::testing::QueryRows;

// A running sweepd on a free loopback port.
struct Coordinator {
  explicit Coordinator(const std::string& dir, const std::string& db)
      : addr_file(dir + "/sweepd.addr") {
    std::remove(addr_file.c_str());
    process = std::make_unique<ChildProcess>(
        std::vector<std::string>{kBin + "/sweepd", "--db", db, "--listen", "127.0.0.1:0",
                                 "--port-file", addr_file},
        dir + "/sweepd.log");
    address = WaitForPortFile(addr_file, 30s);
    EXPECT_FALSE(address.empty()) << ReadFile(dir + "/sweepd.log");
  }
  std::string addr_file;
  std::string address;
  std::unique_ptr<ChildProcess> process;
};

TEST(DemoSweep, RunsThroughEveryComponentAndStoresResults) {
  const std::string dir = MakeTempDir("sweepd-e2e-");
  const std::string db = dir + "/sweepd.db";
  const std::string spec = std::string(SWEEPD_SOURCE_DIR) + "/sweeps/demo-cpu.yaml";
  const std::vector<std::string> cache_env = {"SWEEPD_CACHE=" + std::string(SWEEPD_TEST_CACHE)};

  {
    Coordinator sweepd(dir, db);
    ASSERT_FALSE(sweepd.address.empty());
    ChildProcess worker({kBin + "/sweep-worker", "--coordinator", sweepd.address, "--workdir",
                         dir + "/worker"},
                        dir + "/worker.log", cache_env);

    std::string out;
    ASSERT_EQ(RunCommand({kBin + "/sweepctl", "--coordinator", sweepd.address, "submit", spec}, &out),
              0)
        << out;
    ASSERT_EQ(RunCommand({kBin + "/sweepctl", "--coordinator", sweepd.address, "watch", "demo"},
                         &out, 15min),
              0)
        << out << "\nworker log:\n"
        << ReadFile(dir + "/worker.log");
    EXPECT_EQ(WEXITSTATUS(worker.Stop()), 0) << ReadFile(dir + "/worker.log");
    EXPECT_EQ(WEXITSTATUS(sweepd.process->Stop()), 0) << ReadFile(dir + "/sweepd.log");
  }

  // Every job of the sweep succeeded, and each train job has one result with real numbers.
  auto states = QueryRows(db,
                      "SELECT j.state, j.kind FROM jobs j JOIN sweep_jobs s ON s.job_id = j.job_id "
                      "WHERE s.sweep = 'demo'");
  ASSERT_FALSE(states.empty());
  int train_jobs = 0;
  for (const auto& row : states) {
    EXPECT_EQ(row[0], "succeeded");
    if (row[1] == "train") ++train_jobs;
  }
  auto results = QueryRows(db,
                       "SELECT r.result_json FROM results r JOIN jobs j ON j.job_id = r.job_id "
                       "JOIN sweep_jobs s ON s.job_id = j.job_id "
                       "WHERE s.sweep = 'demo' AND j.kind = 'train'");
  ASSERT_EQ(static_cast<int>(results.size()), train_jobs);
  for (const auto& row : results) {
    auto r = nlohmann::json::parse(row[0]);
    EXPECT_TRUE(std::isfinite(r.at("final_loss").get<double>())) << row[0];
    EXPECT_GT(r.at("tokens_per_s").get<double>(), 0.0) << row[0];
    EXPECT_FALSE(r.at("scores").empty()) << row[0];
  }

  // Results read straight from the file, no server running: a header and one line per job.
  std::string csv;
  ASSERT_EQ(RunCommand({kBin + "/sweepctl", "--db", db, "results", "demo", "--format", "csv"},
                       &csv),
            0)
      << csv;
  int lines = 0;
  for (char c : csv) lines += c == '\n';
  EXPECT_GE(lines, 2) << csv;

  // The exported table says what was measured: synthetic tasks, and the metric of each.
  std::string md;
  ASSERT_EQ(RunCommand({kBin + "/sweepctl", "--db", db, "export", "demo", "--format", "md"}, &md), 0) << md;
  EXPECT_NE(md.find("synthetic-mc acc ft"), std::string::npos) << md;
  EXPECT_NE(md.find("synthetic-arith EM strict Δ"), std::string::npos) << md;
  EXPECT_EQ(md.find("GSM8K"), std::string::npos) << md;
  EXPECT_EQ(md.find("ARC-C"), std::string::npos) << md;

  // The paper table of the demo: mean ± std over its two seeds, accepted by the strict check
  // and compiled by pdflatex (deploy/install-deps.sh installs texlive).
  std::string tex;
  ASSERT_EQ(RunCommand({kBin + "/sweepctl", "--db", db, "export", "demo", "--format", "latex"}, &tex), 0)
      << tex;
  EXPECT_NE(tex.find("\\pm"), std::string::npos) << tex;
  EXPECT_THAT(client::testing::CheckLatexTable(tex), ::testing::IsEmpty()) << tex;
  const std::string compiled = client::testing::CompileWithPdflatex(tex, dir);
  EXPECT_TRUE(compiled.empty() || compiled == "skip") << compiled;

  // A second sweepd on the same file keeps the first run's sweep.
  {
    Coordinator again(dir, db);
    std::string list;
    ASSERT_EQ(RunCommand({kBin + "/sweepctl", "--coordinator", again.address, "list"}, &list), 0)
        << list;
    EXPECT_NE(list.find("demo"), std::string::npos) << list;
    again.process->Stop();
  }
}

}  // namespace
}  // namespace sweepd
