// The life of one sweep-train job. Order matters for reproducibility: the adapters are
// initialised from the job seed right after the base model is ready, the data order is a
// function of the seed and a cursor, and a resumed run restores adapter, optimizer and
// cursor before its first step, so that it ends with the same adapter as an unbroken run.
#include "worker/trainer/job_runner.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include "common/model_shapes.h"
#include "common/param_count.h"
#include "worker/compat.h"
#include "worker/data/instruction_data.h"
#include "worker/data/packing.h"
#include "worker/data/synthetic_tasks.h"
#include "worker/data/tokenizer.h"
#include "worker/eval/eval_tasks.h"
#include "worker/eval/scoring.h"
#include "worker/eval/spectrum.h"
#include "worker/eval/tradeoff.h"
#include "worker/models/hf_checkpoint.h"
#include "worker/trainer/adamw.h"
#include "worker/trainer/adapter_set.h"
#include "worker/trainer/checkpoint.h"
#include "worker/trainer/cuda_graph.h"
#include "worker/trainer/optimizer_groups.h"
#include "worker/trainer/peft_folder.h"
#include "worker/trainer/synthetic_base.h"

namespace sweepd::trainer {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int64_t kSyntheticTrainExamples = 4000;

class Clock {
 public:
  double Seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

void Log(const std::string& line) { std::cerr << "sweep-train: " << line << std::endl; }

torch::Device ParseDevice(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available()) {
      throw std::invalid_argument("device '" + name + "' requested but this sweep-train sees no CUDA device");
    }
    return torch::Device(name);
  }
  throw std::invalid_argument("device must be cpu or cuda[:N], not '" + name + "'");
}

struct BaseModel {
  models::LlamaForCausalLM model{nullptr};
  std::unique_ptr<data::Tokenizer> tokenizer;
  int64_t total_params = 0;
  std::string fingerprint;  // synthetic models: LoadSyntheticBase's hash of the weights
};

BaseModel LoadBase(const JobConfig& config, const RunOptions& options) {
  BaseModel base;
  const ModelSpec& spec = config.model;
  if (IsSyntheticModel(spec.source)) {
    base.model = LoadSyntheticBase(spec.source, options.cache_dir, Log, &base.fingerprint);
    base.tokenizer = std::make_unique<data::ByteTokenizer>();
  } else {
    base.model = models::LoadHfModel(spec.source, models::ParseDtype(spec.dtype));
    std::string tokenizer = spec.tokenizer;
    if (tokenizer.empty()) tokenizer = (fs::path(spec.source) / "tokenizer.model").string();
    if (!fs::exists(tokenizer)) {
      throw std::invalid_argument(tokenizer + ": no SentencePiece tokenizer; set model.tokenizer");
    }
    base.tokenizer = data::LoadSentencePieceTokenizer(tokenizer);
  }
  for (const auto& p : base.model->parameters()) {
    p.set_requires_grad(false);
    base.total_params += p.numel();
  }
  return base;
}

std::vector<data::InstructionExample> TrainingExamples(const JobConfig& config) {
  const std::string& d = config.train.data;
  if (d.rfind("synthetic:", 0) == 0) {
    // Training draws from its own stream (seed-dependent), apart from the fixed eval set.
    return data::SyntheticTrainingExamples(d.substr(10), 0x7A11ULL + static_cast<uint64_t>(config.seed),
                                           kSyntheticTrainExamples);
  }
  return data::ReadInstructionFile(d);
}

std::map<std::string, double> Evaluate(const JobConfig& config, BaseModel& base, const std::string& stage,
                                       const std::vector<eval::EvalTask>& tasks, const torch::Device& device,
                                       MetricsWriter& metrics) {
  std::map<std::string, double> scores;
  for (const auto& task : tasks) {
    const Clock clock;
    eval::TaskScore s = eval::ScoreTask(base.model, *base.tokenizer, task, device);
    scores[task.name] = s.score;
    metrics.Emit({{"type", "eval"}, {"stage", stage}, {"task", task.name}, {"score", s.score}, {"n", s.n},
                  {"elapsed_s", clock.Seconds()}});
  }
  (void)config;
  return scores;
}

json SpectrumReport(const AdapterSet& set) {
  json layers = json::array();
  double entropy = 0, normalized = 0, stable = 0;
  for (const auto& a : set.adapters()) {
    eval::SpectrumStats s;
    if (auto factors = a.adapter->LowRankFactors()) {
      // ΔW = s·B·A: the spectrum of B·A scaled; entropy and stable rank ignore the scale.
      s = eval::SpectrumOfLowRank(factors->first, factors->second);
    } else {
      s = eval::SpectrumOfDelta(a.adapter->DeltaWeight());
    }
    layers.push_back({{"name", a.module}, {"entropy", s.entropy}, {"normalized_entropy", s.normalized_entropy},
                      {"stable_rank", s.stable_rank}});
    entropy += s.entropy;
    normalized += s.normalized_entropy;
    stable += s.stable_rank;
  }
  const double n = std::max<double>(1.0, static_cast<double>(layers.size()));
  return {{"mean_entropy", entropy / n}, {"mean_normalized_entropy", normalized / n},
          {"mean_stable_rank", stable / n}, {"layers", layers}};
}

// Means over layers of each diagnostic the adapters report, plus the worst (max) value.
json DiagnosticsReport(const AdapterSet& set) {
  std::map<std::string, std::pair<double, double>> sums;  // name -> (sum, max)
  std::map<std::string, int> counts;
  for (const auto& a : set.adapters()) {
    for (const auto& [name, value] : a.adapter->Diagnostics()) {
      auto& [sum, worst] = sums[name];
      sum += value;
      worst = counts[name] == 0 ? value : std::max(worst, value);
      ++counts[name];
    }
  }
  json out = json::object();
  for (const auto& [name, v] : sums) {
    out[name] = {{"mean", v.first / counts[name]}, {"max", v.second}};
  }
  return out;
}

json StartLine(const JobConfig& config, const torch::Device& device) {
  return {{"type", "start"},
          {"job_id", config.job_id},
          {"kind", config.kind},
          {"method", config.adapter.value("method", "")},
          {"track", config.track.name},
          {"seed", config.seed},
          {"model", config.model.source},
          {"device", device.str()},
          {"steps", config.train.steps},
          {"torch_version", TORCH_VERSION}};
}

// Checks the adapter settings and the track against the model's shapes before anything
// expensive runs; errors name the job file.
void CheckAdapterSettings(const JobConfig& config, const RunOptions& options) {
  const std::string where = options.job_path.empty() ? "job" : options.job_path;
  Result<ModelShape> shape = LoadModelShape(config.model.source);
  if (!shape.ok()) throw std::invalid_argument(shape.status().message());
  Result<std::vector<LinearShape>> layers = SelectTrack(*shape, config.track);
  if (!layers.ok()) throw std::invalid_argument(where + ": " + layers.status().message());
  for (const LinearShape& layer : *layers) {
    Result<int64_t> count = CountTrainableParameters(config.adapter, layer);
    if (!count.ok()) throw std::invalid_argument(where + ": " + count.status().message());
  }
}

void CheckStop(const RunOptions& options) {
  if (options.stop != nullptr && options.stop->load()) throw std::runtime_error("terminated");
}

}  // namespace

int RunJob(const JobConfig& config, const RunOptions& options, MetricsWriter& metrics) {
  const Clock wall;
  const torch::Device device = ParseDevice(config.device);
  const bool cuda = device.is_cuda();
  torch::manual_seed(static_cast<uint64_t>(config.seed));
  metrics.Emit(StartLine(config, device));
  if (cuda) compat::ResetCudaPeak(device.has_index() ? device.index() : 0);

  // Check everything that can be checked before any expensive work.
  std::vector<eval::EvalTask> tasks;
  for (const EvalSpec& spec : config.eval) tasks.push_back(eval::LoadEvalTask(spec));
  std::vector<data::InstructionExample> examples;
  if (config.kind == "train") {
    CheckAdapterSettings(config, options);
    examples = TrainingExamples(config);
    if (config.train.seq_len <= 0 || config.train.micro_batch <= 0 || config.train.tokens_per_update <= 0) {
      throw std::invalid_argument("train.seq_len, train.micro_batch and train.tokens_per_update must be positive");
    }
  }

  BaseModel base = LoadBase(config, options);
  base.model->to(device);

  json final_line = {{"type", "final"}, {"job_id", config.job_id}, {"kind", config.kind},
                     {"method", config.adapter.value("method", "")}, {"track", config.track.name},
                     {"seed", config.seed}};
  if (!base.fingerprint.empty()) final_line["base_fingerprint"] = base.fingerprint;
  if (config.kind == "base_eval") {
    auto scores = Evaluate(config, base, "base", tasks, device, metrics);
    final_line["scores"] = scores;
    final_line["total_params"] = base.total_params;
    final_line["wall_s"] = wall.Seconds();
    final_line["peak_mem_bytes"] = PeakMemoryBytes(device);
    metrics.Emit(final_line);
    return kExitOk;
  }

  // Adapters first (seeded), so that their initial values do not depend on whether base
  // scores had to be computed.
  torch::manual_seed(static_cast<uint64_t>(config.seed));
  AdapterSet adapters = AdapterSet::Attach(base.model, config.adapter, config.track);

  std::optional<Checkpoint> resumed;
  if (options.resume) resumed = LoadLatestCheckpoint(options.workdir);

  std::map<std::string, double> base_scores = config.base_scores;
  if (!config.base_fingerprint.empty() && !base.fingerprint.empty() && config.base_fingerprint != base.fingerprint) {
    // The base evaluation ran on another machine whose pre-training made other weights: its
    // scores are not this model's, and Δ against them would compare two models.
    Log("the base scores came from base model " + config.base_fingerprint + ", this machine's is " +
        base.fingerprint + " (another LibTorch build or CPU); evaluating this base model here");
    base_scores.clear();
  }
  if (resumed && resumed->state.contains("base_scores")) {
    base_scores = resumed->state["base_scores"].get<std::map<std::string, double>>();
  }
  bool missing_base = false;
  for (const auto& t : tasks) missing_base |= !base_scores.count(t.name);
  if (missing_base) {
    // The base model's scores: the adapters start as the identity for most methods, but
    // not all (SORSA, JORA's magnitude), so evaluate with the adapters detached.
    std::vector<std::shared_ptr<adapters::Adapter>> saved;
    auto linears = base.model->Linears();
    for (const auto& a : adapters.adapters()) linears.at(a.module)->Attach(nullptr);
    auto scores = Evaluate(config, base, "base", tasks, device, metrics);
    for (const auto& a : adapters.adapters()) linears.at(a.module)->Attach(a.adapter);
    for (const auto& [k, v] : scores) base_scores.emplace(k, v);
  }

  AdamW optimizer;
  AddAdapterParams(optimizer, adapters, config.adapter, config.train, "base_model.model.");

  std::vector<data::TokenizedExample> tokenized;
  for (const auto& ex : examples) tokenized.push_back(data::TokenizeExample(ex, *base.tokenizer));
  data::Packer packer(std::move(tokenized), static_cast<uint64_t>(config.seed), base.tokenizer->Eos());

  int64_t start_step = 0;
  int64_t total_tokens = 0;
  double train_seconds = 0;
  if (resumed) {
    adapters.Load(resumed->adapter, resumed->path + "/adapter_model.safetensors");
    optimizer.LoadState(resumed->optimizer, resumed->state.at("optimizer_steps").get<int64_t>());
    packer.set_cursor(resumed->state.at("data_cursor").get<int64_t>());
    start_step = resumed->step;
    total_tokens = resumed->state.value("tokens", int64_t{0});
    train_seconds = resumed->state.value("train_seconds", 0.0);
    Log("resumed from " + resumed->path + " at step " + std::to_string(start_step));
  }

  const TrainSpec& train = config.train;
  const int64_t rows_per_update =
      std::max<int64_t>(1, (train.tokens_per_update + train.seq_len - 1) / train.seq_len);
  base.model->train();
  double last_loss = std::nan("");
  const int64_t log_every = std::max<int64_t>(1, train.log_every);

  auto save = [&](int64_t step) {
    json state = {{"step", step},
                  {"optimizer_steps", optimizer.steps()},
                  {"data_cursor", packer.cursor()},
                  {"tokens", total_tokens},
                  {"train_seconds", train_seconds},
                  {"base_scores", base_scores},
                  {"job_id", config.job_id}};
    const std::string path = SaveCheckpoint(options.workdir, step, adapters.Tensors(true), optimizer.State(), state);
    metrics.Emit({{"type", "checkpoint"}, {"step", step}, {"path", path}});
  };

  // Full micro-batches replay one CUDA graph (cuda_graph.h) reading these tensors; a shorter
  // last micro-batch of an update runs eagerly.
  const bool graphs = UseCudaGraphs(device, adapters.CudaGraphSafe());
  optimizer.KeepGradients(graphs);
  torch::Tensor graph_ids, graph_targets, graph_segments, graph_denominator;
  if (graphs) {
    auto long_opts = torch::TensorOptions().dtype(torch::kInt64).device(device);
    graph_ids = torch::zeros({train.micro_batch, train.seq_len}, long_opts);
    graph_targets = torch::zeros({train.micro_batch, train.seq_len}, long_opts);
    graph_segments = torch::zeros({train.micro_batch, train.seq_len}, long_opts);
    graph_denominator = torch::ones({}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
  }
  // Forward, loss (summed over the update's target tokens) and backward of one micro-batch.
  auto pass = [&](const torch::Tensor& ids, const torch::Tensor& targets, const torch::Tensor& segments,
                  const torch::Tensor& denominator) {
    torch::Tensor logits;
    {
      compat::CudaAutocast autocast(cuda);
      logits = base.model->forward(ids, segments);
    }
    auto loss = torch::nn::functional::cross_entropy(
                    logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32), targets.reshape({-1}),
                    torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum)) /
                denominator;
    loss.backward();
    return loss.detach();
  };
  GraphedPass graphed(device, [&] { return pass(graph_ids, graph_targets, graph_segments, graph_denominator); });
  if (graphs) Log("training passes replay as a CUDA graph (SWEEP_TRAIN_CUDA_GRAPHS=0 turns this off)");

  bool warned_truncation = false;
  for (int64_t step = start_step; step < train.steps; ++step) {
    const Clock step_clock;
    data::PackedRows update = packer.NextRows(rows_per_update, train.seq_len);
    if (update.truncated_examples > 0 && !warned_truncation) {
      std::cerr << "sweep-train: training examples longer than train.seq_len " << train.seq_len
                << " lose the beginning of their prompt; raise train.seq_len" << std::endl;
      warned_truncation = true;
    }
    const double denominator = std::max<int64_t>(1, update.target_tokens);
    double loss_sum = 0;
    optimizer.ZeroGrad();
    for (int64_t r0 = 0; r0 < rows_per_update; r0 += train.micro_batch) {
      CheckStop(options);
      const int64_t n = std::min(train.micro_batch, rows_per_update - r0);
      torch::Tensor loss;
      if (graphs && n == train.micro_batch) {
        graph_ids.copy_(update.input_ids.narrow(0, r0, n));
        graph_targets.copy_(update.targets.narrow(0, r0, n));
        graph_segments.copy_(update.segment_ids.narrow(0, r0, n));
        graph_denominator.fill_(denominator);
        loss = graphed.Run();
      } else {
        loss = pass(update.input_ids.narrow(0, r0, n).to(device), update.targets.narrow(0, r0, n).to(device),
                    update.segment_ids.narrow(0, r0, n).to(device), torch::scalar_tensor(denominator, torch::kFloat64));
      }
      loss_sum += loss.item<double>();
    }
    for (const auto& a : adapters.adapters()) {
      auto reg = a.adapter->RegularizationLoss();
      if (reg.defined()) {
        reg.backward();
      }
    }
    if (!std::isfinite(loss_sum)) {
      std::cerr << "sweep-train: loss is " << loss_sum << " at step " << step + 1
                << "; lower train.lr or check the data" << std::endl;
      return kExitNonFinite;
    }
    ClipGradNorm(optimizer.Params(), train.grad_clip);
    const double scale = ScheduleMultiplier(train.schedule, train.warmup_ratio, step, train.steps);
    optimizer.Step(scale);
    for (const auto& a : adapters.adapters()) a.adapter->AfterOptimizerStep(step + 1, train.steps);
    optimizer.ZeroGrad();
    last_loss = loss_sum;
    total_tokens += update.tokens;
    train_seconds += step_clock.Seconds();
    const int64_t done = step + 1;
    if (done % log_every == 0 || done == train.steps || done == start_step + 1) {
      metrics.Emit({{"type", "step"},
                    {"step", done},
                    {"total_steps", train.steps},
                    {"loss", loss_sum},
                    {"lr", train.lr * scale},
                    {"tokens_per_s", train_seconds > 0 ? static_cast<double>(total_tokens) / train_seconds : 0.0},
                    {"peak_mem_bytes", PeakMemoryBytes(device)},
                    {"tokens", total_tokens},
                    {"elapsed_s", wall.Seconds()}});
    }
    if (train.checkpoint_every > 0 && done % train.checkpoint_every == 0 && done != train.steps) save(done);
  }
  graphed.Release();
  if (train.steps > start_step || !resumed) save(train.steps);
  if (HasPeftLayout(config)) {
    // The final adapter in PEFT's layout too (PeftModel.from_pretrained; docs/adapters.md).
    WritePeftFolder((fs::path(options.workdir) / "adapter").string(), config, adapters);
  }

  auto scores = Evaluate(config, base, "final", tasks, device, metrics);
  eval::TradeoffResult tradeoff = eval::ComputeTradeoff(scores, base_scores, config.eval, config.tradeoff_lambda);
  final_line["steps"] = train.steps;
  final_line["final_loss"] = std::isfinite(last_loss) ? json(last_loss) : json(nullptr);
  final_line["tokens_per_s"] = train_seconds > 0 ? static_cast<double>(total_tokens) / train_seconds : 0.0;
  final_line["peak_mem_bytes"] = PeakMemoryBytes(device);
  final_line["wall_s"] = wall.Seconds();
  final_line["trainable_params"] = adapters.TrainableParameters();
  final_line["total_params"] = base.total_params + adapters.TrainableParameters();
  final_line["scores"] = scores;
  final_line["base_scores"] = base_scores;
  final_line["delta"] = tradeoff.delta;
  final_line["avg_delta"] = tradeoff.avg_delta;
  final_line["tradeoff"] = tradeoff.tradeoff;
  final_line["svd"] = SpectrumReport(adapters);
  final_line["diagnostics"] = DiagnosticsReport(adapters);
  metrics.Emit(final_line);
  return kExitOk;
}

}  // namespace sweepd::trainer
