// sweepctl export --adapters: the best configuration by mean trade-off over seeds, its jobs'
// adapter folders and merged models copied from output_dir with a best.json; a folder that
// exists and is not empty, a job without output_dir and a missing adapter are refused with the
// path, and nothing is written then.
#include "client/adapter_export.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace sweepd::client {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Fixture {
  std::string root = sweepd::testing::MakeTempDir("adapter-export-");
  std::string out = root + "/out";
  std::vector<ResultRecord> records;

  // A finished train job of lora r=`r`, seed `seed`, whose adapter (and, with `merged`, merged
  // model) lies in output_dir.
  void Job(const std::string& id, int r, int seed, double tradeoff, bool merged) {
    ResultRecord rec;
    rec.job_id = id;
    rec.sweep = "s";
    rec.config = {{"job_id", id},          {"kind", "train"}, {"seed", seed},
                  {"adapter", {{"method", "lora"}, {"r", r}}}, {"output_dir", out}};
    rec.result = {{"type", "final"}, {"kind", "train"}, {"tradeoff", tradeoff}};
    records.push_back(rec);
    fs::create_directories(out + "/" + id + "/adapter");
    std::ofstream(out + "/" + id + "/adapter/adapter_config.json") << "{\"r\": " << r << "}";
    std::ofstream(out + "/" + id + "/adapter/adapter_model.safetensors") << id;
    if (merged) {
      fs::create_directories(out + "/" + id + "/merged");
      std::ofstream(out + "/" + id + "/merged/config.json") << "{}";
    }
  }
  ~Fixture() { fs::remove_all(root); }
};

TEST(AdapterExport, CopiesTheBestConfigurationsSeedsWithTheirMergedModels) {
  Fixture f;
  f.Job("j-a0", 4, 0, 1.0, true);
  f.Job("j-a1", 4, 1, 3.0, true);   // r=4: mean 2.0
  f.Job("j-b0", 8, 0, 5.0, false);  // r=8: mean 1.5, the best single job but not the best mean
  f.Job("j-b1", 8, 1, -2.0, false);
  ResultRecord base;
  base.job_id = "j-base";
  base.config = {{"kind", "base_eval"}};
  base.result = {{"kind", "base_eval"}, {"tradeoff", 99.0}};  // never a candidate
  f.records.push_back(base);
  const std::string dest = f.root + "/best";
  auto copied = ExportBestAdapters(f.records, {}, dest);
  ASSERT_TRUE(copied.ok()) << copied.status().message();
  EXPECT_NE(copied->find("2 adapter folder(s), 2 merged model(s)"), std::string::npos) << *copied;
  EXPECT_EQ(sweepd::testing::ReadFile(dest + "/seed-0/adapter/adapter_model.safetensors"), "j-a0");
  EXPECT_EQ(sweepd::testing::ReadFile(dest + "/seed-1/adapter/adapter_model.safetensors"), "j-a1");
  EXPECT_TRUE(fs::is_regular_file(dest + "/seed-1/merged/config.json"));
  const json manifest = json::parse(sweepd::testing::ReadFile(dest + "/best.json"));
  EXPECT_DOUBLE_EQ(manifest["tradeoff_mean"].get<double>(), 2.0);
  EXPECT_EQ(manifest["configuration"]["adapter.r"], "4");
  ASSERT_EQ(manifest["jobs"].size(), 2u);
  EXPECT_EQ(manifest["jobs"][0]["job_id"], "j-a0");

  // A filter narrows the candidates: among r=8 only, r=8 wins (its merged models are absent).
  auto filter = ParseFilter("adapter.r=8");
  ASSERT_TRUE(filter.ok());
  auto narrowed = ExportBestAdapters(f.records, {*filter}, f.root + "/best8");
  ASSERT_TRUE(narrowed.ok()) << narrowed.status().message();
  EXPECT_EQ(sweepd::testing::ReadFile(f.root + "/best8/seed-0/adapter/adapter_model.safetensors"), "j-b0");
  EXPECT_FALSE(fs::exists(f.root + "/best8/seed-0/merged"));
}

TEST(AdapterExport, RefusalsNameThePathAndWriteNothing) {
  Fixture f;
  f.Job("j-a0", 4, 0, 1.0, false);
  // An existing, non-empty destination is never overwritten.
  fs::create_directories(f.root + "/taken");
  std::ofstream(f.root + "/taken/keep.txt") << "mine";
  auto taken = ExportBestAdapters(f.records, {}, f.root + "/taken");
  ASSERT_FALSE(taken.ok());
  EXPECT_NE(taken.status().message().find("exists and is not empty"), std::string::npos);
  EXPECT_EQ(sweepd::testing::ReadFile(f.root + "/taken/keep.txt"), "mine");

  // The adapter gone from output_dir (another machine's disk): the path is named.
  fs::remove_all(f.out + "/j-a0/adapter");
  auto missing = ExportBestAdapters(f.records, {}, f.root + "/none");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(f.out + "/j-a0/adapter: no adapter folder"), std::string::npos)
      << missing.status().message();
  EXPECT_FALSE(fs::exists(f.root + "/none"));

  // A sweep without output_dir.
  f.records[0].config.erase("output_dir");
  auto no_dir = ExportBestAdapters(f.records, {}, f.root + "/none");
  ASSERT_FALSE(no_dir.ok());
  EXPECT_NE(no_dir.status().message().find("has no output_dir"), std::string::npos);
  EXPECT_FALSE(fs::exists(f.root + "/none"));
}

}  // namespace
}  // namespace sweepd::client
