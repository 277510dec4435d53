// Δ and trade-off (see tradeoff.h).
#include "worker/eval/tradeoff.h"

#include <algorithm>

#include "common/eval_settings.h"

namespace sweepd::eval {

TradeoffResult ComputeTradeoff(const std::map<std::string, double>& scores,
                               const std::map<std::string, double>& base_scores,
                               const std::vector<EvalSpec>& tasks, double lambda) {
  TradeoffResult r;
  double plasticity = 0, stability = 0;
  int n_plasticity = 0, n_stability = 0;
  for (const EvalSpec& t : tasks) {
    const std::string name = ScoreName(t);  // the metric the spec chose
    auto s = scores.find(name);
    auto b = base_scores.find(name);
    if (s == scores.end() || b == base_scores.end()) continue;
    const double d = s->second - b->second;
    r.delta[name] = d;
    if (t.role == "plasticity") {
      plasticity += d;
      ++n_plasticity;
    } else if (t.role == "stability") {
      stability += d;
      ++n_stability;
    }
  }
  for (const auto& [_, d] : r.delta) r.avg_delta += d;
  if (!r.delta.empty()) r.avg_delta /= static_cast<double>(r.delta.size());
  const double dp = n_plasticity ? plasticity / n_plasticity : 0.0;
  const double ds = n_stability ? stability / n_stability : 0.0;
  r.tradeoff = dp - lambda * std::max(0.0, -ds);
  return r;
}

}  // namespace sweepd::eval
