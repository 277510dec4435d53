// The start and final lines of a run (see reports.h).
#include "worker/trainer/reports.h"

#include <algorithm>
#include <cmath>

#include "worker/eval/spectrum.h"
#include "worker/eval/tradeoff.h"
#include "worker/trainer/metrics_writer.h"

namespace sweepd::trainer {
using nlohmann::json;
namespace {

json FinalLineHead(const JobConfig& config, const std::string& fingerprint) {
  json final_line = {{"type", "final"}, {"job_id", config.job_id}, {"kind", config.kind},
                     {"method", config.adapter.value("method", "")}, {"track", config.track.name},
                     {"seed", config.seed}};
  if (!fingerprint.empty()) final_line["base_fingerprint"] = fingerprint;
  return final_line;
}

}  // namespace

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

json BaseEvalFinalLine(const JobConfig& config, const std::string& fingerprint,
                       const std::map<std::string, double>& scores, int64_t total_params, const torch::Device& device,
                       double wall_s) {
  json final_line = FinalLineHead(config, fingerprint);
  final_line["scores"] = scores;
  final_line["total_params"] = total_params;
  final_line["wall_s"] = wall_s;
  final_line["peak_mem_bytes"] = PeakMemoryBytes(device);
  return final_line;
}

json TrainFinalLine(const JobConfig& config, const std::string& fingerprint,
                    const std::map<std::string, double>& scores, const std::map<std::string, double>& base_scores,
                    const TrainingProgress& progress, const AdapterSet& adapters, int64_t base_params,
                    const torch::Device& device, double wall_s) {
  eval::TradeoffResult tradeoff = eval::ComputeTradeoff(scores, base_scores, config.eval, config.tradeoff_lambda);
  json final_line = FinalLineHead(config, fingerprint);
  final_line["steps"] = config.train.steps;
  final_line["final_loss"] = std::isfinite(progress.last_loss) ? json(progress.last_loss) : json(nullptr);
  final_line["tokens_per_s"] =
      progress.train_seconds > 0 ? static_cast<double>(progress.total_tokens) / progress.train_seconds : 0.0;
  final_line["peak_mem_bytes"] = PeakMemoryBytes(device);
  final_line["wall_s"] = wall_s;
  final_line["trainable_params"] = adapters.TrainableParameters();
  final_line["total_params"] = base_params + adapters.TrainableParameters();
  final_line["scores"] = scores;
  final_line["base_scores"] = base_scores;
  final_line["delta"] = tradeoff.delta;
  final_line["avg_delta"] = tradeoff.avg_delta;
  final_line["tradeoff"] = tradeoff.tradeoff;
  final_line["svd"] = SpectrumReport(adapters);
  final_line["diagnostics"] = DiagnosticsReport(adapters);
  return final_line;
}

json SpectrumReport(const AdapterSet& set) {
  json layers = json::array();
  double entropy = 0, normalized = 0, effective_rank = 0, stable = 0;
  for (const auto& a : set.adapters()) {
    if (!a.adapter->IsLinearInInput()) continue;  // no ΔW to take the spectrum of
    eval::SpectrumStats s;
    if (auto factors = a.adapter->LowRankFactors()) {
      // ΔW = s·B·A: the spectrum of B·A scaled; entropy and stable rank ignore the scale.
      s = eval::SpectrumOfLowRank(factors->first, factors->second);
    } else {
      s = eval::SpectrumOfDelta(a.adapter->DeltaWeight());
    }
    layers.push_back({{"name", a.module}, {"entropy", s.entropy}, {"normalized_entropy", s.normalized_entropy},
                      {"effective_rank", s.effective_rank}, {"stable_rank", s.stable_rank}});
    entropy += s.entropy;
    normalized += s.normalized_entropy;
    effective_rank += s.effective_rank;
    stable += s.stable_rank;
  }
  // No layer with a ΔW (every adapter nonlinear in x): the means are null, not zero.
  auto mean = [&](double sum) { return layers.empty() ? json(nullptr) : json(sum / layers.size()); };
  return {{"mean_entropy", mean(entropy)}, {"mean_normalized_entropy", mean(normalized)},
          {"mean_effective_rank", mean(effective_rank)}, {"mean_stable_rank", mean(stable)}, {"layers", layers}};
}

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

}  // namespace sweepd::trainer
