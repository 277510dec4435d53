// The training loop (see training_loop.h). Order matters for reproducibility: the data
// order is a function of the seed and the packer's cursor, so a run resumed with adapter,
// optimizer and cursor restored takes the same steps as an unbroken one.
#include "worker/trainer/training_loop.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>

#include "worker/compat.h"
#include "worker/data/chat_template.h"
#include "worker/data/instruction_data.h"
#include "worker/data/synthetic_tasks.h"
#include "worker/failures.h"
#include "worker/trainer/cuda_graph.h"
#include "worker/trainer/distributed.h"
#include "worker/trainer/optimizer_groups.h"
#include "worker/trainer/reports.h"
#include "worker/trainer/stderr_log.h"
#include "worker/trainer/synthetic_base.h"

namespace sweepd::trainer {
using nlohmann::json;
namespace fs = std::filesystem;
namespace {

constexpr int64_t kSyntheticTrainExamples = 4000;

void CheckStop(const std::atomic<bool>* stop) {
  if (stop != nullptr && stop->load()) throw std::runtime_error("terminated");
}

// The adapters' regularisers (Adapter::Regularizer) applied at this point of the step: the
// mean of the layers' terms, weighted, as PEFT's AdaLoraModel.forward and SORSA's calc_ortho
// average over their matrices (two per layer).
void BackwardRegularizers(const AdapterSet& adapters, double lr, bool before_clipping) {
  torch::Tensor total;
  int64_t layers = 0;
  for (const auto& a : adapters.adapters()) {
    const adapters::Adapter::RegularizerUse use = a.adapter->Regularizer(lr);
    if (use.before_clipping != before_clipping || use.weight == 0) continue;
    torch::Tensor reg = a.adapter->RegularizationLoss();
    if (!reg.defined()) continue;
    total = total.defined() ? total + use.weight * reg : use.weight * reg;
    ++layers;
  }
  if (layers > 0) (total / static_cast<double>(layers)).backward();
}

}  // namespace

std::optional<data::ChatTemplate> ChatTemplateFor(const ModelSpec& model) {
  std::vector<fs::path> folders;
  if (!model.tokenizer.empty()) folders.push_back(fs::path(model.tokenizer).parent_path());
  if (!IsSyntheticModel(model.source)) folders.push_back(fs::path(model.source));
  std::string config;
  for (const fs::path& folder : folders) {
    if (config.empty() && fs::exists(folder / "tokenizer_config.json")) {
      config = (folder / "tokenizer_config.json").string();
    }
  }
  if (model.chat_template.empty()) {
    if (config.empty()) return std::nullopt;
    std::ifstream in(config);
    const json c = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (c.is_discarded() || !c.is_object() || !c.contains("chat_template")) return std::nullopt;
  }
  Result<data::ChatTemplate> chat = data::LoadChatTemplate(config, model.chat_template);
  if (!chat.ok()) throw InvalidInput(chat.status().message());
  return std::move(*chat);
}

std::vector<data::InstructionExample> TrainingExamples(const JobConfig& config, const data::ChatTemplate* chat,
                                                      const std::atomic<bool>* stop) {
  const std::string& d = config.train.data;
  if (d.rfind("synthetic:", 0) == 0) {
    // Training draws from its own stream (seed-dependent), apart from the fixed eval set.
    return data::SyntheticTrainingExamples(d.substr(10), 0x7A11ULL + static_cast<uint64_t>(config.seed),
                                           kSyntheticTrainExamples);
  }
  return data::ReadInstructionFile(d, chat, stop);
}

AdamW BuildOptimizer(const JobConfig& config, const AdapterSet& adapters) {
  AdamW optimizer;
  AddAdapterParams(optimizer, adapters, config.adapter, config.train, "base_model.model.");
  return optimizer;
}

bool Train(const JobConfig& config, BaseModel& base, AdapterSet& adapters, AdamW& optimizer, data::Packer& packer,
           const torch::Device& device, const Stopwatch& wall, const std::atomic<bool>* stop,
           TrainingProgress& progress, const std::function<void(int64_t)>& save,
           const std::function<void(int64_t)>& evaluate, MetricsWriter& metrics) {
  const bool cuda = device.is_cuda();
  const int64_t start_step = progress.step;
  const TrainSpec& train = config.train;
  const int64_t rows_per_update =
      std::max<int64_t>(1, (train.tokens_per_update + train.seq_len - 1) / train.seq_len);
  base.model->train();
  const int64_t log_every = std::max<int64_t>(1, train.log_every);
  DataParallel& dp = DataParallel::Current();

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
  if (graphs) LogLine("training passes replay as a CUDA graph (SWEEP_TRAIN_CUDA_GRAPHS=0 turns this off)");

  bool warned_truncation = false;
  for (int64_t step = start_step; step < train.steps; ++step) {
    const Stopwatch step_clock;
    data::PackedRows update = packer.NextRows(rows_per_update, train.seq_len);
    if (update.truncated_examples > 0 && !warned_truncation) {
      std::cerr << "sweep-train: training examples longer than train.seq_len " << train.seq_len
                << " lose the beginning of their prompt; raise train.seq_len" << std::endl;
      warned_truncation = true;
    }
    const double denominator = std::max<int64_t>(1, update.target_tokens);
    double loss_sum = 0;
    optimizer.ZeroGrad();
    // Across ranks (distributed.h) each runs its share of the update's micro-batches.
    const int64_t micro_batches = (rows_per_update + train.micro_batch - 1) / train.micro_batch;
    const auto [first_mb, last_mb] = RankShare(micro_batches, dp.rank(), dp.world());
    for (int64_t mb = first_mb; mb < last_mb; ++mb) {
      const int64_t r0 = mb * train.micro_batch;
      CheckStop(stop);
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
    if (dp.world() > 1) dp.AllReduceGradients(optimizer.Params(), loss_sum);
    BackwardRegularizers(adapters, train.lr, /*before_clipping=*/true);
    if (!std::isfinite(loss_sum)) {
      std::cerr << "sweep-train: loss is " << loss_sum << " at step " << step + 1
                << "; lower train.lr or check the data" << std::endl;
      return false;
    }
    ClipGradNorm(optimizer.Params(), train.grad_clip);
    BackwardRegularizers(adapters, train.lr, /*before_clipping=*/false);
    const double scale = ScheduleMultiplier(train.schedule, train.warmup_ratio, step, train.steps);
    optimizer.Step(scale);
    for (const auto& a : adapters.adapters()) a.adapter->AfterOptimizerStep(step + 1, train.steps);
    optimizer.ZeroGrad();
    progress.last_loss = loss_sum;
    progress.total_tokens += update.tokens;
    progress.train_seconds += step_clock.Seconds();
    const int64_t done = step + 1;
    progress.step = done;
    const bool spectrum_due = train.spectrum_every > 0 && done % train.spectrum_every == 0;
    if (done % log_every == 0 || done == train.steps || done == start_step + 1 || spectrum_due) {
      json line = {{"type", "step"},
                   {"step", done},
                   {"total_steps", train.steps},
                   {"loss", loss_sum},
                   {"lr", train.lr * scale},
                   {"tokens_per_s", progress.train_seconds > 0
                                        ? static_cast<double>(progress.total_tokens) / progress.train_seconds
                                        : 0.0},
                   {"peak_mem_bytes", PeakMemoryBytes(device)},
                   {"tokens", progress.total_tokens},
                   {"elapsed_s", wall.Seconds()}};
      if (spectrum_due) {
        // The spectra over training (spectrum_every): the means over layers, as in the final line.
        json svd = SpectrumReport(adapters);
        svd.erase("layers");
        line["svd"] = svd;
      }
      metrics.Emit(line);
    }
    if (train.eval_every > 0 && done % train.eval_every == 0 && done != train.steps) evaluate(done);
    if (train.checkpoint_every > 0 && done % train.checkpoint_every == 0 && done != train.steps) save(done);
  }
  graphed.Release();
  return true;
}

}  // namespace sweepd::trainer
