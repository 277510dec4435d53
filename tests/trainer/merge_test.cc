// sweep-train merge as a subprocess: every method trained a few steps by `sweep-train run` on
// the tiny Hugging Face fixtures, merged, and the merged folder loaded back by our own loader
// gives base + adapter's logits (float32); small shards come with a correct index and load
// back; bad input is one line naming the folder and the key, exit 2, and leaves nothing behind.
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/contracts.h"
#include "common/methods/registry.h"
#include "tests/support/process.h"
#include "worker/io/safetensors.h"
#include "worker/models/hf_checkpoint.h"
#include "worker/trainer/peft_folder.h"

namespace sweepd::trainer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using sweepd::testing::MakeTempDir;
using sweepd::testing::ReadFile;

const std::string kTrain = std::string(SWEEPD_BIN_DIR) + "/sweep-train";
const std::string kModels = std::string(SWEEPD_FIXTURES) + "/models/";
const std::string kTokenizer = std::string(SWEEPD_FIXTURES) + "/tokenizer/tiny.model";

const json& Cases() {
  static const json cases =
      json::parse(ReadFile(std::string(SWEEPD_SOURCE_DIR) + "/tests/trainer/jobs/merge_methods.json"));
  return cases;
}

struct CommandRun {
  int status = -1;
  std::string output;
};

CommandRun SweepTrain(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kTrain};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandRun r;
  r.status = sweepd::testing::RunCommand(argv, &r.output, std::chrono::minutes(5));
  return r;
}

// Trains `c["adapter"]` on `c["model"]` for the fixture's few steps; returns the adapter folder.
std::string TrainAdapter(const json& c, const std::string& dir) {
  json job = Cases()["job"];
  job["job_id"] = "merge-" + c["adapter"]["method"].get<std::string>();
  job["model"] = {{"source", kModels + c["model"].get<std::string>()}, {"tokenizer", kTokenizer}};
  job["adapter"] = c["adapter"];
  std::ofstream(dir + "/job.json") << job.dump();
  const CommandRun run = SweepTrain({"run", "--job", dir + "/job.json", "--workdir", dir + "/work"});
  EXPECT_EQ(run.status, 0) << run.output;
  return dir + "/work/adapter";
}

torch::Tensor TokenIds(const models::LlamaForCausalLM& model) {
  torch::manual_seed(3);
  return torch::randint(model->config().vocab_size, {2, 24}, torch::kLong);
}

torch::Tensor Logits(models::LlamaForCausalLM& model, const torch::Tensor& ids) {
  torch::NoGradGuard no_grad;
  model->eval();
  return model->forward(ids);
}

double MaxAbs(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// Base + adapter's logits and the merged folder's, and the base's alone.
struct Compared {
  double merged_vs_adapter = 0;
  double merged_vs_base = 0;
};

Compared Compare(const std::string& model_folder, const std::string& adapter, const std::string& merged) {
  models::LlamaForCausalLM base = models::LoadHfModel(model_folder, torch::kFloat32);
  const torch::Tensor ids = TokenIds(base);
  const torch::Tensor plain = Logits(base, ids);
  AdapterSet set = LoadPeftFolder(adapter, base);
  const torch::Tensor with_adapter = Logits(base, ids);
  models::LlamaForCausalLM folded = models::LoadHfModel(merged, torch::kFloat32);
  const torch::Tensor merged_logits = Logits(folded, ids);
  return {MaxAbs(merged_logits, with_adapter), MaxAbs(merged_logits, plain)};
}

void ExpectOneLineError(const CommandRun& run, const std::vector<std::string>& names) {
  EXPECT_EQ(run.status, exit_status::kInvalid) << run.output;
  std::string text = run.output;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  EXPECT_EQ(text.find('\n'), std::string::npos) << run.output;
  for (const std::string& n : names) EXPECT_NE(run.output.find(n), std::string::npos) << n << " not in: " << run.output;
}

TEST(SweepTrainMerge, EveryMethodMergedGivesTheLogitsOfBasePlusAdapter) {
  const double tolerance = Cases()["tolerance"];
  std::set<std::string> methods_seen;
  for (const json& c : Cases()["cases"]) {
    const std::string method = c["adapter"]["method"];
    SCOPED_TRACE(c.dump());
    methods_seen.insert(method);
    const std::string dir = MakeTempDir("merge-" + method + "-");
    const std::string adapter = TrainAdapter(c, dir);
    const std::string model = kModels + c["model"].get<std::string>();
    const CommandRun merge = SweepTrain({"merge", "--model", model, "--adapter", adapter, "--out", dir + "/merged"});
    ASSERT_EQ(merge.status, 0) << merge.output;
    const Compared d = Compare(model, adapter, dir + "/merged");
    EXPECT_LE(d.merged_vs_adapter, tolerance);
    // The adapter changed the model: a merge that dropped it would fail the line above.
    EXPECT_GT(d.merged_vs_base, 10 * tolerance);
    const json config = json::parse(ReadFile(dir + "/merged/config.json"));
    EXPECT_EQ(config["dtype"], "float32");
    EXPECT_TRUE(fs::exists(dir + "/merged/generation_config.json"));
    EXPECT_TRUE(fs::exists(dir + "/merged/model.safetensors"));
    EXPECT_FALSE(fs::exists(dir + "/merged/model.safetensors.index.json"));
  }
  for (const methods::MethodInfo* m : methods::Methods()) {
    EXPECT_TRUE(methods_seen.count(m->name)) << "merge_methods.json has no case for method " << m->name;
  }
}

TEST(SweepTrainMerge, SmallShardSizeWritesShardsWithACorrectIndexThatLoadsBack) {
  const json& c = Cases()["cases"][0];
  const std::string dir = MakeTempDir("merge-shards-");
  const std::string adapter = TrainAdapter(c, dir);
  const std::string model = kModels + c["model"].get<std::string>();
  ASSERT_EQ(SweepTrain({"merge", "--model", model, "--adapter", adapter, "--out", dir + "/one"}).status, 0);
  // A third of the bfloat16 weights (half the float32 file) per shard: three shards or more.
  const int64_t total = static_cast<int64_t>(fs::file_size(dir + "/one/model.safetensors")) / 2;
  const CommandRun merge = SweepTrain({"merge", "--model", model, "--adapter", adapter, "--out", dir + "/sharded",
                                "--max-shard-size", std::to_string(total / 3), "--dtype", "bfloat16"});
  ASSERT_EQ(merge.status, 0) << merge.output;
  EXPECT_FALSE(fs::exists(dir + "/sharded/model.safetensors"));
  const json index = json::parse(ReadFile(dir + "/sharded/model.safetensors.index.json"));
  std::set<std::string> shards;
  for (const auto& [name, file] : index["weight_map"].items()) shards.insert(file.get<std::string>());
  ASSERT_GE(shards.size(), 3u);
  int64_t bytes = 0;
  std::set<std::string> names;
  int shard_number = 0;
  for (const std::string& file : shards) {
    ++shard_number;
    char expected[64];
    std::snprintf(expected, sizeof expected, "model-%05d-of-%05zu.safetensors", shard_number, shards.size());
    EXPECT_EQ(file, expected);
    io::SafetensorsFile f = io::SafetensorsFile::Open(dir + "/sharded/" + file);
    for (const std::string& n : f.Names()) {
      EXPECT_EQ(index["weight_map"][n], file) << n;
      const torch::Tensor t = f.Get(n);
      EXPECT_EQ(t.scalar_type(), torch::kBFloat16) << n;
      bytes += t.numel() * static_cast<int64_t>(t.element_size());
      names.insert(n);
    }
  }
  EXPECT_EQ(index["metadata"]["total_size"].get<int64_t>(), bytes);
  EXPECT_EQ(names.size(), index["weight_map"].size());
  EXPECT_EQ(json::parse(ReadFile(dir + "/sharded/config.json"))["dtype"], "bfloat16");
  // Loads back: the same weights as the single file, rounded to bfloat16.
  models::LlamaForCausalLM one = models::LoadHfModel(dir + "/one", torch::kFloat32);
  models::LlamaForCausalLM sharded = models::LoadHfModel(dir + "/sharded", torch::kFloat32);
  auto a = one->named_parameters(), b = sharded->named_parameters();
  for (const auto& p : a) {
    EXPECT_TRUE(torch::equal(p.value().to(torch::kBFloat16).to(torch::kFloat32), b[p.key()])) << p.key();
  }
}

TEST(SweepTrainMerge, AdapterForAnotherBaseIsOneLineNamingFolderAndTensorAndWritesNothing) {
  const json& c = Cases()["cases"][0];
  const std::string dir = MakeTempDir("merge-other-base-");
  const std::string adapter = TrainAdapter(c, dir);
  // A fixture model with other layer shapes (tiny-mistral has tiny-llama's).
  const auto width = [](const std::string& folder) {
    const json c = models::ReadConfigJson(folder);
    json shape;
    for (const char* k : {"hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "head_dim"}) {
      shape[k] = c.value(k, json());
    }
    return shape;
  };
  const std::string model = kModels + c["model"].get<std::string>();
  std::string other;
  for (const json& k : Cases()["cases"]) {
    const std::string candidate = kModels + k["model"].get<std::string>();
    if (other.empty() && width(candidate) != width(model)) other = candidate;
  }
  ASSERT_FALSE(other.empty());
  const CommandRun merge = SweepTrain({"merge", "--model", other, "--adapter", adapter, "--out", dir + "/merged"});
  ExpectOneLineError(merge, {adapter, "base_model.model.model.layers.0."});
  EXPECT_FALSE(fs::exists(dir + "/merged"));
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().filename().string().find(".partial"), std::string::npos) << entry.path();
  }
}

TEST(SweepTrainMerge, NonEmptyOutIsRefusedAndLeftAlone) {
  const json& c = Cases()["cases"][0];
  const std::string dir = MakeTempDir("merge-out-");
  const std::string adapter = TrainAdapter(c, dir);
  fs::create_directories(dir + "/merged");
  std::ofstream(dir + "/merged/notes.txt") << "keep me";
  const CommandRun merge = SweepTrain(
      {"merge", "--model", kModels + c["model"].get<std::string>(), "--adapter", adapter, "--out", dir + "/merged"});
  ExpectOneLineError(merge, {dir + "/merged", "--out"});
  EXPECT_EQ(ReadFile(dir + "/merged/notes.txt"), "keep me");
  EXPECT_FALSE(fs::exists(dir + "/merged/config.json"));
}

TEST(SweepTrainMerge, AdapterNotLinearInItsInputIsRefusedNamingTheKey) {
  const json& c = Cases()["nonlinear"];
  const std::string dir = MakeTempDir("merge-nonlinear-");
  const std::string adapter = TrainAdapter(c, dir);
  const CommandRun merge = SweepTrain(
      {"merge", "--model", kModels + c["model"].get<std::string>(), "--adapter", adapter, "--out", dir + "/merged"});
  ExpectOneLineError(merge, {adapter + "/adapter_config.json", "tanh_clip"});
  EXPECT_FALSE(fs::exists(dir + "/merged"));
}

// sweepd's merge jobs: a train job with output_dir leaves a copy of its adapter folder there;
// a kind-merge job folds it into the base model at output_dir/<train job>/merged, and its final
// line says so. Without the train job's folder the merge job is one line naming it, exit 2.
TEST(SweepTrainMerge, MergeJobFoldsTheAdapterItsTrainJobLeftInOutputDir) {
  const std::string dir = MakeTempDir("merge-job-");
  const std::string out = dir + "/out";
  json train = Cases()["job"];
  train["job_id"] = "j-train";
  train["model"] = {{"source", kModels + "tiny-llama"}, {"tokenizer", kTokenizer}};
  train["adapter"] = {{"method", "lora"}, {"r", 4}, {"alpha", 8}};
  train["output_dir"] = out;
  std::ofstream(dir + "/train.json") << train.dump();
  const CommandRun trained = SweepTrain({"run", "--job", dir + "/train.json", "--workdir", dir + "/train"});
  ASSERT_EQ(trained.status, 0) << trained.output;
  const std::string adapter = out + "/j-train/adapter";
  ASSERT_TRUE(fs::is_regular_file(adapter + "/adapter_model.safetensors"));
  EXPECT_EQ(ReadFile(adapter + "/adapter_model.safetensors"), ReadFile(dir + "/train/adapter/adapter_model.safetensors"));

  json merge = {{"job_id", "j-merge"},
                {"kind", "merge"},
                {"model", {{"source", kModels + "tiny-llama"}, {"tokenizer", kTokenizer}}},
                {"track", train["track"]},
                {"adapter", train["adapter"]},
                {"output_dir", out},
                {"merge", {{"from_job", "j-train"}, {"dtype", "float32"}}}};
  std::ofstream(dir + "/merge.json") << merge.dump();
  const CommandRun merged = SweepTrain({"run", "--job", dir + "/merge.json", "--workdir", dir + "/merge"});
  ASSERT_EQ(merged.status, 0) << merged.output;
  json final_line;
  std::istringstream lines(merged.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"type\":\"final\"") != std::string::npos) final_line = json::parse(line);
  }
  ASSERT_TRUE(final_line.is_object()) << merged.output;
  EXPECT_EQ(final_line["kind"], "merge");
  EXPECT_EQ(final_line["merged"], out + "/j-train/merged");
  EXPECT_EQ(final_line["method"], "lora");
  const Compared c = Compare(kModels + "tiny-llama", adapter, out + "/j-train/merged");
  EXPECT_LT(c.merged_vs_adapter, 1e-4);
  EXPECT_GT(c.merged_vs_base, 1e-4);

  // The same merge for a train job that left nothing: one line naming the folder it looked in.
  merge["merge"]["from_job"] = "j-never-ran";
  std::ofstream(dir + "/missing.json") << merge.dump();
  const CommandRun missing = SweepTrain({"run", "--job", dir + "/missing.json", "--workdir", dir + "/missing"});
  EXPECT_EQ(missing.status, exit_status::kInvalid) << missing.output;
  EXPECT_NE(missing.output.find(out + "/j-never-ran/adapter: no adapter folder"), std::string::npos) << missing.output;
  EXPECT_FALSE(fs::exists(out + "/j-never-ran/merged"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sweepd::trainer
