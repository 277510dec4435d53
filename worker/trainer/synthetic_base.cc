// Pre-training of the synthetic base model (seeded and on one CPU thread, so machines with the
// same LibTorch build make the same weights whatever their core count; another BLAS or CPU
// may round differently: docs/gpu-run.md) and its on-disk cache guarded by flock(2).
#include "worker/trainer/synthetic_base.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "common/model_shapes.h"
#include "worker/data/packing.h"
#include "worker/data/synthetic_tasks.h"
#include "worker/failures.h"
#include "worker/models/hf_checkpoint.h"
#include "worker/trainer/adamw.h"

namespace sweepd::trainer {
namespace fs = std::filesystem;

namespace {

// Bump when the recipe below changes, so that stale caches are not reused.
// 2: pre-training on one CPU thread (version 1's weights followed the machine's thread count).
constexpr int kRecipeVersion = 2;
constexpr uint64_t kPretrainSeed = 20240611;
constexpr int64_t kPretrainSteps = 400;
constexpr int64_t kRowsPerStep = 16;
constexpr int64_t kSeqLen = 128;
constexpr double kPretrainLr = 3e-3;
constexpr int64_t kPretrainExamples = 20000;

// FNV-1a (64 bit) of `text` as 16 hex digits: the cache key and the weights' fingerprint.
std::string Fnv1aHex(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw IoError(IoErrorText(path, "cannot open lock file"));
    if (::flock(fd_, LOCK_EX) != 0) throw IoError(IoErrorText(path, "cannot lock"));
  }
  ~FileLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

// Runs its scope on one intra-op CPU thread, then restores the count.
class SingleThreaded {
 public:
  SingleThreaded() : saved_(at::get_num_threads()) { at::set_num_threads(1); }
  ~SingleThreaded() { at::set_num_threads(saved_); }
  SingleThreaded(const SingleThreaded&) = delete;
  SingleThreaded& operator=(const SingleThreaded&) = delete;

 private:
  int saved_;
};

// On one thread: CPU kernels split over more threads sum in another order, and the weights would
// follow the machine's core count (OMP_NUM_THREADS=16 and 2 gave different losses by step 50).
// The tiny model gains little from more threads (on 2 cores the run used one core anyway).
void Pretrain(models::LlamaForCausalLM& model, const std::function<void(const std::string&)>& log) {
  SingleThreaded one_thread;
  model->InitializeWeights(kPretrainSeed);
  model->train();
  data::ByteTokenizer tokenizer;
  std::vector<data::TokenizedExample> examples;
  for (const auto& ex : data::PretrainingExamples(kPretrainSeed, kPretrainExamples)) {
    examples.push_back(data::TokenizeExample(ex, tokenizer));
  }
  data::Packer packer(std::move(examples), kPretrainSeed, data::ByteTokenizer::kPad);
  AdamW optimizer;
  for (auto& p : model->named_parameters()) {
    const bool decays = p.value().dim() >= 2;
    optimizer.Add(p.key(), p.value(), decays ? 0 : 1);
  }
  optimizer.SetGroup(0, {kPretrainLr, 0.01});
  optimizer.SetGroup(1, {kPretrainLr, 0.0});
  const auto start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < kPretrainSteps; ++step) {
    data::PackedRows rows = packer.NextRows(kRowsPerStep, kSeqLen);
    auto logits = model->forward(rows.input_ids, rows.segment_ids);
    auto loss = models::NextTokenLoss(logits, rows.targets);
    optimizer.ZeroGrad();
    loss.backward();
    ClipGradNorm(optimizer.Params(), 1.0);
    optimizer.Step(ScheduleMultiplier("cosine", 0.05, step, kPretrainSteps));
    if ((step + 1) % 50 == 0 || step == 0) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      log("pre-training the synthetic base model: step " + std::to_string(step + 1) + "/" +
          std::to_string(kPretrainSteps) + ", loss " + std::to_string(loss.item<double>()) + ", " +
          std::to_string(static_cast<int>(s)) + " s");
    }
  }
  optimizer.ZeroGrad();
}

}  // namespace

bool IsSyntheticModel(const std::string& source) { return source.rfind("synthetic:", 0) == 0; }

std::string ResolveCacheDir(const std::string& flag) {
  fs::path dir;
  if (!flag.empty()) {
    dir = flag;
  } else if (const char* env = std::getenv("SWEEPD_CACHE"); env && *env) {
    dir = env;
  } else if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    dir = fs::path(xdg) / "sweepd";
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    dir = fs::path(home) / ".cache" / "sweepd";
  } else {
    dir = fs::temp_directory_path() / "sweepd-cache";
  }
  return fs::absolute(dir).lexically_normal().string();
}

models::LlamaForCausalLM LoadSyntheticBase(const std::string& source, const std::string& cache_dir,
                                           const std::function<void(const std::string&)>& log,
                                           std::string* fingerprint) {
  Result<nlohmann::json> config_json = SyntheticModelConfig(source);
  if (!config_json.ok()) throw InvalidInput(config_json.status().message());
  Result<models::LlamaConfig> config = models::LlamaConfigFromJson(*config_json, source);
  if (!config.ok()) throw InvalidInput(config.status().message());
  const std::string name = source.substr(source.find(':') + 1);
  const std::string key = Fnv1aHex(config_json->dump() + "#" + std::to_string(kRecipeVersion));
  const fs::path folder = fs::path(cache_dir) / ("synthetic-" + name + "-" + key);
  fs::create_directories(cache_dir);
  if (!fs::exists(folder / "model.safetensors")) {
    FileLock lock((fs::path(cache_dir) / ("synthetic-" + name + ".lock")).string());
    if (!fs::exists(folder / "model.safetensors")) {  // another job may have finished meanwhile
      log("no cached base model in " + folder.string() + "; pre-training it (once per cache)");
      torch::manual_seed(kPretrainSeed);
      models::LlamaForCausalLM model(*config);
      Pretrain(model, log);
      const fs::path tmp = folder.string() + ".tmp" + std::to_string(::getpid());
      models::SaveHfModel(model, *config_json, tmp.string());
      fs::rename(tmp, folder);
    }
  }
  if (fingerprint != nullptr) {
    std::ifstream in(folder / "model.safetensors", std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) throw IoError(IoErrorText((folder / "model.safetensors").string(), "cannot read"));
    *fingerprint = Fnv1aHex(bytes);
  }
  return models::LoadHfModel(folder.string(), torch::kFloat32);
}

}  // namespace sweepd::trainer
