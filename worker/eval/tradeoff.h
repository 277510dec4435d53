// Δ-scores and the plasticity/stability trade-off of a fine-tuned model against its base:
// Δ_t = score_ft − score_base; tradeoff = Δ_plasticity − λ·max(0, −Δ_stability), where a role
// with several tasks takes their mean. Scores are keyed by ScoreName (common/eval_settings.h).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/job_config.h"

namespace sweepd::eval {

struct TradeoffResult {
  std::map<std::string, double> delta;
  double avg_delta = 0;
  double tradeoff = 0;
};

TradeoffResult ComputeTradeoff(const std::map<std::string, double>& scores,
                               const std::map<std::string, double>& base_scores,
                               const std::vector<EvalSpec>& tasks, double lambda);

}  // namespace sweepd::eval
