// Parameter budgets: trainable-parameter counts of adapter settings over a track's
// layers, and BudgetSolver, which picks a method's size knob so that its count is within
// a tolerance of a reference configuration (the seed design matches LoRA r=16 to ±5%).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/param_count.h"
#include "common/status.h"

namespace sweepd {

// Sum of CountTrainableParameters over `layers`.
Result<int64_t> CountForLayers(const nlohmann::json& settings, const std::vector<LinearShape>& layers);

struct BudgetMatch {
  bool found = false;
  nlohmann::json settings;        // the input settings with the chosen knob value filled in
  int64_t count = 0;              // its trainable parameters on the layers
  double ratio = 0.0;             // count / reference
  std::string reason;             // when !found: why, with the counts that are reachable
};

class BudgetSolver {
 public:
  BudgetSolver(std::vector<LinearShape> layers, int64_t reference_count, double tolerance);

  // The default size knob of a method, as its registration declares it (lora: r, oft:
  // oft_block_size, ...); empty when the method has none (ia3) or is unknown.
  static std::string DefaultKnob(const std::string& method);
  // The count of `settings` as they are (no knob searched) against the reference.
  Result<BudgetMatch> Evaluate(const nlohmann::json& settings) const;
  // Chooses `knob` of `settings` (or the method's default knob when empty) so that the count
  // is within tolerance of the reference, preferring the closest count.
  Result<BudgetMatch> Match(const nlohmann::json& settings, const std::string& knob = "") const;
  // True when `count` is within tolerance of the reference.
  bool WithinTolerance(int64_t count) const;

  int64_t reference_count() const { return reference_count_; }
  double tolerance() const { return tolerance_; }

 private:
  std::vector<LinearShape> layers_;
  int64_t reference_count_;
  double tolerance_;
};

}  // namespace sweepd
