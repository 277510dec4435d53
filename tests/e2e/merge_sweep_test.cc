// End to end: a sweep with output_dir and merge: through the real sweepd, sweep-worker and
// sweep-train. Every train job leaves its adapter in output_dir, a merge job after each folds it
// into the tiny Llama fixture, result tables leave the merge jobs out, and `sweepctl export
// --adapters` copies the best configuration's adapters and merged models out of output_dir.
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/local_sweep.h"
#include "tests/support/process.h"
#include "tests/support/sqlite_rows.h"

namespace sweepd {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using sweepd::testing::MakeTempDir;
using sweepd::testing::ReadFile;
using sweepd::testing::RunCommand;

const std::string kBin = SWEEPD_BIN_DIR;

TEST(MergeSweep, MergeJobsRunAfterTheirTrainJobsAndExportCopiesTheBestOut) {
  const std::string dir = MakeTempDir("sweepd-merge-");
  const std::string out = dir + "/out";
  const auto run = sweepd::testing::RunLocalSweep(
      dir, std::string(SWEEPD_SOURCE_DIR) + "/tests/e2e/merge_sweep.yaml",
      {{"@MODEL@", std::string(SWEEPD_FIXTURES) + "/models/tiny-llama"},
       {"@TOKENIZER@", std::string(SWEEPD_FIXTURES) + "/tokenizer/tiny.model"},
       {"@DATA@", std::string(SWEEPD_SOURCE_DIR) + "/tests/trainer/data"},
       {"@OUT@", out}},
      "merged-sweep");
  ASSERT_TRUE(run.started) << run.output;
  ASSERT_EQ(run.watch_status, 0) << run.output;
  const std::string db = dir + "/sweepd.db";

  // Every job succeeded; each merge job ran after its train job and wrote its merged model.
  const auto jobs = sweepd::testing::QueryRows(
      db, "SELECT j.job_id, j.kind, j.state, j.config_json FROM jobs j JOIN sweep_jobs s ON s.job_id = j.job_id "
          "WHERE s.sweep = 'merged-sweep'");
  std::set<std::string> trained, merged_from;
  for (const auto& row : jobs) {
    EXPECT_EQ(row[2], "succeeded") << row[0] << " " << row[1] << "\n" << ReadFile(dir + "/worker.log");
    if (row[1] == "train") trained.insert(row[0]);
    if (row[1] == "merge") merged_from.insert(json::parse(row[3]).at("merge").at("from_job").get<std::string>());
  }
  ASSERT_EQ(trained.size(), 4u);
  EXPECT_EQ(merged_from, trained);
  for (const std::string& id : trained) {
    EXPECT_TRUE(fs::is_regular_file(out + "/" + id + "/adapter/adapter_model.safetensors")) << id;
    EXPECT_TRUE(fs::is_regular_file(out + "/" + id + "/merged/model.safetensors")) << id;
    EXPECT_TRUE(fs::is_regular_file(out + "/" + id + "/merged/config.json")) << id;
  }

  // The table has the two configurations, no merge rows; the best one's seeds are copied out.
  std::string table;
  ASSERT_EQ(RunCommand({kBin + "/sweepctl", "--db", db, "export", "merged-sweep", "--format", "csv", "--adapters",
                        dir + "/best"},
                       &table),
            0)
      << table;
  EXPECT_NE(table.find("LoRA(r=2)"), std::string::npos) << table;
  EXPECT_NE(table.find("LoRA(r=4)"), std::string::npos) << table;
  EXPECT_NE(table.find("2 adapter folder(s), 2 merged model(s)"), std::string::npos) << table;
  const json best = json::parse(ReadFile(dir + "/best/best.json"));
  ASSERT_EQ(best.at("jobs").size(), 2u);
  for (const auto& job : best.at("jobs")) {
    const std::string seed = "seed-" + std::to_string(job.at("seed").get<int>());
    EXPECT_TRUE(trained.count(job.at("job_id").get<std::string>()));
    EXPECT_TRUE(fs::is_regular_file(dir + "/best/" + seed + "/adapter/adapter_config.json"));
    EXPECT_TRUE(fs::is_regular_file(dir + "/best/" + seed + "/merged/model.safetensors"));
  }
  // Never over an existing folder.
  EXPECT_NE(RunCommand({kBin + "/sweepctl", "--db", db, "export", "merged-sweep", "--adapters", dir + "/best"}, &table),
            0);
  EXPECT_NE(table.find("exists and is not empty"), std::string::npos) << table;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sweepd
