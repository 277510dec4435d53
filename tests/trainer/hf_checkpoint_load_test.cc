// Loading sharded Hugging Face checkpoints to a given dtype (models::LoadHfModel through
// io::SafetensorsFile::CopyTo): the tensors written come back exactly, a damaged shard is a
// one-line error naming the file and the tensor, and host memory peaks near the checkpoint's
// size (sweep-train bench --model --load-only, a real subprocess reading /proc/self/status).
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "tests/support/process.h"
#include "worker/failures.h"
#include "worker/io/safetensors.h"
#include "worker/models/hf_checkpoint.h"
#include "worker/models/llama_config.h"

namespace sweepd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kModels = std::string(SWEEPD_FIXTURES) + "/models/";
const std::string kTrain = std::string(SWEEPD_BIN_DIR) + "/sweep-train";

// Writes `tensors` as a Hugging Face sharded folder: `shards` files in name order, an index
// and `config` (copied from a fixture). Returns the weight map (tensor -> shard file name).
std::map<std::string, std::string> WriteShardedFolder(const std::string& dir, const std::string& config,
                                                      const std::map<std::string, torch::Tensor>& tensors,
                                                      int shards) {
  fs::create_directories(dir);
  fs::copy_file(config, fs::path(dir) / "config.json", fs::copy_options::overwrite_existing);
  auto file_name = [&](size_t shard) {
    return "model-0000" + std::to_string(shard + 1) + "-of-0000" + std::to_string(shards) + ".safetensors";
  };
  std::vector<std::map<std::string, torch::Tensor>> parts(shards);
  std::map<std::string, std::string> weight_map;
  size_t i = 0;
  for (const auto& [name, t] : tensors) {
    const size_t shard = i++ * shards / tensors.size();
    parts[shard][name] = t;
    weight_map[name] = file_name(shard);
  }
  for (size_t s = 0; s < parts.size(); ++s) {
    io::SaveSafetensors((fs::path(dir) / file_name(s)).string(), parts[s], {{"format", "pt"}});
  }
  std::ofstream(fs::path(dir) / "model.safetensors.index.json") << json{{"metadata", json::object()},
                                                                         {"weight_map", weight_map}}.dump(1);
  return weight_map;
}

// The tiny Llama fixture's weights in bf16, as a checkpoint in 3 shards.
class ShardedBf16Folder : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("hf-load");
    models::LlamaForCausalLM source = models::LoadHfModel(kModels + "tiny-llama", torch::kFloat32);
    for (const auto& p : source->named_parameters()) written_[p.key()] = p.value().detach().to(torch::kBFloat16);
    weight_map_ = WriteShardedFolder(dir_, kModels + "tiny-llama/config.json", written_, 3);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Shard(const std::string& tensor) const { return (fs::path(dir_) / weight_map_.at(tensor)).string(); }

  // Rewrites the header of `path` with `edit`, keeping the data bytes as they are.
  static void EditHeader(const std::string& path, const std::function<void(json&)>& edit) {
    std::string bytes = testing::ReadFile(path);
    uint64_t len = 0;
    for (int i = 7; i >= 0; --i) len = (len << 8) | static_cast<unsigned char>(bytes[i]);
    json header = json::parse(bytes.substr(8, len));
    edit(header);
    std::string h = header.dump();
    while (h.size() % 8 != 0) h.push_back(' ');
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << out << h << bytes.substr(8 + len);
  }

  // The InvalidInput message of loading the folder; "" when it loads.
  std::string LoadError() const {
    try {
      models::LoadHfModel(dir_, torch::kBFloat16);
    } catch (const InvalidInput& e) {
      return e.what();
    }
    return "";
  }

  std::string dir_;
  std::map<std::string, torch::Tensor> written_;
  std::map<std::string, std::string> weight_map_;
};

TEST_F(ShardedBf16Folder, LoadsAsBf16BitEqual) {
  std::set<std::string> files;
  for (const auto& [name, file] : weight_map_) files.insert(file);
  ASSERT_EQ(files.size(), 3u);
  models::LlamaForCausalLM model = models::LoadHfModel(dir_, torch::kBFloat16);
  size_t n = 0;
  for (const auto& p : model->named_parameters()) {
    ASSERT_EQ(p.value().scalar_type(), torch::kBFloat16) << p.key();
    EXPECT_FALSE(p.value().requires_grad()) << p.key();
    EXPECT_TRUE(torch::equal(p.value().view(torch::kInt16), written_.at(p.key()).view(torch::kInt16))) << p.key();
    ++n;
  }
  EXPECT_EQ(n, written_.size());
}

TEST_F(ShardedBf16Folder, LoadsAsFloat32Exactly) {
  models::LlamaForCausalLM model = models::LoadHfModel(dir_, torch::kFloat32);
  for (const auto& p : model->named_parameters()) {
    ASSERT_EQ(p.value().scalar_type(), torch::kFloat32) << p.key();
    EXPECT_TRUE(torch::equal(p.value(), written_.at(p.key()).to(torch::kFloat32))) << p.key();
  }
}

TEST_F(ShardedBf16Folder, WeightsLoadedKeepTheModelsOutput) {
  // The loaded bf16 model computes what a model filled with the same tensors computes.
  models::LlamaForCausalLM loaded = models::LoadHfModel(dir_, torch::kFloat32);
  models::LlamaForCausalLM reference = models::LoadHfModel(kModels + "tiny-llama", torch::kFloat32);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : reference->named_parameters()) p.value().copy_(written_.at(p.key()));
  }
  torch::Tensor ids = torch::arange(0, 12, torch::kInt64).remainder(loaded->config().vocab_size).view({1, 12});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(loaded->forward(ids), reference->forward(ids)));
}

void ExpectOneLineNaming(const std::string& message, const std::string& file, const std::string& tensor) {
  EXPECT_NE(message.find(file), std::string::npos) << message;
  EXPECT_NE(message.find("'" + tensor + "'"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST_F(ShardedBf16Folder, TruncatedShardNamesFileAndTensor) {
  // SaveSafetensors writes tensors in name order: the last name's bytes end the last shard.
  const std::string last = written_.rbegin()->first;
  const std::string file = Shard(last);
  fs::resize_file(file, fs::file_size(file) - 10);
  const std::string message = LoadError();
  ExpectOneLineNaming(message, file, last);
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
}

TEST_F(ShardedBf16Folder, HeaderOffsetsBeyondTheFileNameFileAndTensor) {
  const std::string tensor = "model.norm.weight";
  const std::string file = Shard(tensor);
  const auto size = static_cast<int64_t>(fs::file_size(file));
  EditHeader(file, [&](json& h) { h[tensor]["data_offsets"] = {size, size + written_.at(tensor).nbytes()}; });
  ExpectOneLineNaming(LoadError(), file, tensor);
}

TEST_F(ShardedBf16Folder, HeaderDtypeDisagreeingWithTheBytesNamesFileAndTensor) {
  const std::string tensor = "model.layers.0.mlp.up_proj.weight";
  const std::string file = Shard(tensor);
  EditHeader(file, [&](json& h) { h[tensor]["dtype"] = "F32"; });  // twice the bytes the offsets hold
  const std::string message = LoadError();
  ExpectOneLineNaming(message, file, tensor);
  EXPECT_NE(message.find("bytes"), std::string::npos) << message;
}

TEST_F(ShardedBf16Folder, IntegerTensorForAWeightNamesFileAndTensor) {
  const std::string tensor = "model.layers.1.self_attn.q_proj.weight";
  const std::string file = Shard(tensor);
  EditHeader(file, [&](json& h) { h[tensor]["dtype"] = "I16"; });  // same size as BF16
  const std::string message = LoadError();
  ExpectOneLineNaming(message, file, tensor);
  EXPECT_NE(message.find("I16"), std::string::npos) << message;
}

TEST(HfCheckpointLoad, HostMemoryPeaksNearTheCheckpointSize) {
  // A bf16 checkpoint of the load-rss fixture's shape, loaded as bf16 on CPU by a fresh
  // sweep-train: its resident memory grows by the weights (they are the result) and not by a
  // second copy (a float32 one, or the mapped files kept resident).
  const std::string dir = testing::MakeTempDir("hf-load-rss");
  const std::string config = std::string(SWEEPD_SOURCE_DIR) + "/tests/trainer/data/models/load-rss/config.json";
  Result<models::LlamaConfig> parsed = models::LlamaConfigFromJson(models::ReadConfigJson(std::string(SWEEPD_SOURCE_DIR) + "/tests/trainer/data/models/load-rss"), config);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  std::map<std::string, torch::Tensor> tensors;
  {
    models::LlamaForCausalLM model(*parsed);
    torch::manual_seed(0);
    for (const auto& p : model->named_parameters()) tensors[p.key()] = torch::randn(p.value().sizes()).to(torch::kBFloat16);
  }
  WriteShardedFolder(dir, config, tensors, 4);
  tensors.clear();
  int64_t checkpoint_bytes = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".safetensors") checkpoint_bytes += static_cast<int64_t>(e.file_size());
  }

  std::string output;
  const int status = testing::RunCommand(
      {kTrain, "bench", "--model", dir, "--load-only", "--device", "cpu", "--dtype", "bf16"}, &output);
  ASSERT_EQ(status, 0) << output;
  const std::string last = output.substr(output.rfind('{'));
  const json line = json::parse(last);
  const int64_t before = line.at("host_rss_before_load_bytes");
  const int64_t peak = line.at("host_peak_rss_bytes");
  EXPECT_EQ(line.at("load_bytes").get<int64_t>(), checkpoint_bytes);
  EXPECT_GT(line.at("load_seconds").get<double>(), 0.0);
  // The weights themselves are resident at the end (at least 90% of the files' bytes: the
  // headers are not weights) ...
  EXPECT_GE(peak - before, checkpoint_bytes * 9 / 10) << line.dump();
  // ... and the load's peak stays within a quarter of the checkpoint plus 32 MB of it: a
  // second copy (float32 on the host, or the mapped files left resident) would double it.
  EXPECT_LE(peak - before, checkpoint_bytes + checkpoint_bytes / 4 + (int64_t{32} << 20)) << line.dump();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sweepd
