// Column and table-kind catalogue. Headers follow the seed design's tables (Table 1:
// Method | Params | ARC-C ft, Δ | ... | Avg Δ | Tokens/s | Peak VRAM).
#include "client/table_columns.h"

#include <algorithm>
#include <cmath>

#include "common/contracts.h"
#include "common/methods/registry.h"
#include "common/eval_settings.h"

namespace sweepd::client {
namespace {

using nlohmann::json;

std::optional<double> Number(const json& obj, const std::string& key) {
  if (!obj.is_object() || !obj.contains(key)) return std::nullopt;
  const json& v = obj[key];
  if (!v.is_number()) return std::nullopt;
  return v.get<double>();
}

std::optional<double> Nested(const json& obj, const std::string& outer, const std::string& key) {
  if (!obj.is_object() || !obj.contains(outer)) return std::nullopt;
  return Number(obj[outer], key);
}

// A column read straight from one number of the final line.
ColumnDef Direct(Column c, const std::string& key) {
  return {std::move(c), [key](const ResultRecord& r) { return MetricValue{Number(r.result, key), ""}; }};
}

std::optional<double> Delta(const ResultRecord& r, const std::string& task) {
  if (auto d = Nested(r.result, "delta", task)) return d;
  auto ft = Nested(r.result, metric_key::kScores, task);
  auto base = Nested(r.result, "base_scores", task);
  if (ft && base) return *ft - *base;
  return std::nullopt;
}

std::optional<double> MeanOf(const json& obj) {
  if (!obj.is_object() || obj.empty()) return std::nullopt;
  double sum = 0;
  int n = 0;
  for (const auto& [k, v] : obj.items()) {
    if (!v.is_number()) continue;
    sum += v.get<double>();
    ++n;
  }
  if (n == 0) return std::nullopt;
  return sum / n;
}

}  // namespace

std::string TaskDisplayName(const std::string& task) {
  static const std::map<std::string, std::string> kNames = {
      {"arc_challenge", "ARC-C"}, {"arc_easy", "ARC-E"}, {"gsm8k", "GSM8K"},
      {"mmlu", "MMLU"},           {"hellaswag", "HellaSwag"}};
  const auto dot = task.find('.');
  const std::string base = task.substr(0, dot);
  auto it = kNames.find(base);
  std::string name = it == kNames.end() ? base : it->second;
  if (dot == std::string::npos) return name;
  std::string metric = task.substr(dot + 1);
  const std::string em = "exact_match.";
  if (metric.rfind(em, 0) == 0) metric = "EM " + metric.substr(em.size());
  return name + " " + metric;
}

std::string ScoreKeyOf(const nlohmann::json& eval_entry) {
  if (!eval_entry.is_object()) return "";
  if (!eval_entry.contains("metric")) return eval_entry.value("task", "");
  std::vector<EvalProblem> problems;
  const EvalSpec spec = ReadEvalSpec(eval_entry, problems);
  return problems.empty() ? ScoreName(spec) : eval_entry.value("task", "");
}

std::map<std::string, int64_t> FewshotCounts(const std::vector<const ResultRecord*>& records) {
  std::map<std::string, int64_t> shots;
  for (const ResultRecord* r : records) {
    if (!r->config.contains("eval") || !r->config["eval"].is_array()) continue;
    for (const json& e : r->config["eval"]) {
      if (e.is_object() && e.contains("num_fewshot") && e["num_fewshot"].is_number_integer()) {
        shots[ScoreKeyOf(e)] = e["num_fewshot"].get<int64_t>();
      }
    }
  }
  return shots;
}

std::string MethodDisplayName(const std::string& method) { return methods::DisplayLabel(method); }

std::vector<std::string> OrderTasks(std::vector<std::string> tasks) {
  static const std::vector<std::string> kOrder = {"arc_challenge", "gsm8k", "mmlu", "hellaswag"};
  auto rank = [](const std::string& t) {
    auto it = std::find(kOrder.begin(), kOrder.end(), t.substr(0, t.find('.')));
    return static_cast<int>(it - kOrder.begin());
  };
  std::sort(tasks.begin(), tasks.end(), [&](const std::string& a, const std::string& b) {
    return std::make_pair(rank(a), a) < std::make_pair(rank(b), b);
  });
  tasks.erase(std::unique(tasks.begin(), tasks.end()), tasks.end());
  return tasks;
}

std::vector<ColumnDef> ColumnCatalogue(const std::vector<std::string>& tasks,
                                       ParamBreakdownCache& breakdowns,
                                       const std::map<std::string, int64_t>& shots) {
  std::vector<ColumnDef> defs;
  defs.push_back(Direct(Column::Of("params", "Params").In(Unit::kParams).NoStd(),
                        "trainable_params"));
  defs.push_back({Column::Of("params_pct", "Params %").In(Unit::kPercent, 3).NoStd(),
                  [](const ResultRecord& r) {
                    auto t = Number(r.result, "trainable_params");
                    auto all = Number(r.result, "total_params");
                    if (!t || !all || *all <= 0) return MetricValue{};
                    return MetricValue{100.0 * *t / *all, ""};
                  }});
  for (const std::string& task : tasks) {
    const auto fewshot = shots.find(task);
    const std::string name = TaskDisplayName(task) + (fewshot != shots.end() && fewshot->second > 0
                                                          ? " " + std::to_string(fewshot->second) + "-shot"
                                                          : "");
    defs.push_back({Column::Of("score_" + task, name + " ft").Under(name, "ft").HigherIsBetter(),
                    [task](const ResultRecord& r) { return MetricValue{Nested(r.result, metric_key::kScores, task), ""}; }});
    defs.push_back({Column::Of("delta_" + task, name + " Δ").Under(name, "Δ").In(Unit::kSigned).HigherIsBetter(),
                    [task](const ResultRecord& r) { return MetricValue{Delta(r, task), ""}; }});
  }
  defs.push_back({Column::Of("avg_score", "Avg ft").HigherIsBetter(),
                  [](const ResultRecord& r) {
                    return MetricValue{r.result.contains(metric_key::kScores) ? MeanOf(r.result[metric_key::kScores]) : std::nullopt, ""};
                  }});
  defs.push_back({Column::Of("avg_delta", "Avg Δ").In(Unit::kSigned).HigherIsBetter(),
                  [](const ResultRecord& r) {
                    if (auto v = Number(r.result, "avg_delta")) return MetricValue{v, ""};
                    return MetricValue{r.result.contains("delta") ? MeanOf(r.result["delta"]) : std::nullopt, ""};
                  }});
  defs.push_back(Direct(Column::Of("tradeoff", "Trade-off").In(Unit::kSigned).HigherIsBetter(),
                        "tradeoff"));
  defs.push_back(Direct(Column::Of("final_loss", "Loss").Decimals(4).LowerIsBetter(),
                        "final_loss"));
  defs.push_back(Direct(Column::Of("tokens_per_s", "Tokens/s").Decimals(0).HigherIsBetter(),
                        "tokens_per_s"));
  defs.push_back(Direct(Column::Of("peak_mem_bytes", "Peak mem").In(Unit::kBytes).LowerIsBetter(),
                        "peak_mem_bytes"));
  defs.push_back(Direct(Column::Of("wall_s", "Wall s").Decimals(1).LowerIsBetter(),
                        "wall_s"));
  defs.push_back({Column::Of("svd_entropy", "SV entropy").Decimals(3),
                  [](const ResultRecord& r) { return MetricValue{Nested(r.result, "svd", "mean_normalized_entropy"), ""}; }});
  defs.push_back({Column::Of("effective_rank", "Eff. rank").Decimals(2),
                  [](const ResultRecord& r) { return MetricValue{Nested(r.result, "svd", "mean_effective_rank"), ""}; }});
  defs.push_back({Column::Of("stable_rank", "Stable rank"),
                  [](const ResultRecord& r) { return MetricValue{Nested(r.result, "svd", "mean_stable_rank"), ""}; }});
  defs.push_back({Column::Of("coverage", "Coverage k/d").In(Unit::kPercent).NoStd(),
                  [&breakdowns](const ResultRecord& r) {
                    if (!r.config.contains("adapter")) return MetricValue{};
                    auto k = Number(r.config["adapter"], "k");
                    auto b = breakdowns.Get(r.config);
                    if (!k || !b.ok() || b->hidden_size <= 0) return MetricValue{};
                    return MetricValue{100.0 * *k / static_cast<double>(b->hidden_size), ""};
                  }});
  // Parameter components, Table 5.
  struct Part {
    const char* id;
    const char* header;
    int64_t ParamBreakdown::*field;
  };
  for (const Part& part : {Part{"rotation_params", "Rotation", &ParamBreakdown::rotation},
                           Part{"core_params", "Core", &ParamBreakdown::core},
                           Part{"magnitude_params", "Magnitude", &ParamBreakdown::magnitude}}) {
    auto field = part.field;
    defs.push_back({Column::Of(part.id, part.header).In(Unit::kParams).NoStd(),
                    [&breakdowns, field](const ResultRecord& r) {
                      auto b = breakdowns.Get(r.config);
                      if (!b.ok()) return MetricValue{};
                      return MetricValue{static_cast<double>((*b).*field), ""};
                    }});
  }
  defs.push_back({Column::Of("core_type", "Core type").In(Unit::kText).NoStd(),
                  [&breakdowns](const ResultRecord& r) {
                    auto b = breakdowns.Get(r.config);
                    return b.ok() ? MetricValue{std::nullopt, b->core_type} : MetricValue{};
                  }});
  return defs;
}

const std::vector<TableKind>& TableKindList() {
  static const std::string kDeltaNote =
      "Δ = fine-tuned − base score (points); Trade-off = Δ_plasticity − λ·max(0, −Δ_stability).";
  // {name, title, label_by_axes, default_axes, columns, per_job, note}
  static const std::vector<TableKind> kKinds = {
      {"main", "Main results", false, {},
       {"params", "params_pct", "@score_,delta_", "avg_delta", "tradeoff", "final_loss", "tokens_per_s",
        "peak_mem_bytes"},
       false, kDeltaNote},
      {"ablation", "Ablation", false, {}, {"params", "@delta_", "tokens_per_s", "tradeoff"}, false, kDeltaNote},
      {"sweep", "Hyper-parameter sweep", true, {},
       {"params", "@delta_", "avg_delta", "tradeoff", "tokens_per_s", "coverage"}, false,
       kDeltaNote + " Coverage = k / d (the model's hidden size)."},
      {"rank", "Rotation rank", true, {"adapter.r_p"}, {"params", "@score_", "avg_score", "avg_delta"}, false,
       "Scores after fine-tuning by rotation rank r_p."},
      {"budget", "Parameter budget", false, {},
       {"rotation_params", "core_params", "magnitude_params", "params", "core_type"}, false,
       "Rotation: Givens angles or skew factors; Core: the adapted factors; Magnitude: per-output scales."},
      {"jobs", "Results by job", false, {},
       {"params", "final_loss", "tokens_per_s", "peak_mem_bytes", "@score_,delta_", "avg_delta", "tradeoff"},
       true, ""},
  };
  return kKinds;
}

const TableKind* FindTableKind(const std::string& name) {
  for (const auto& k : TableKindList()) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

}  // namespace sweepd::client
