// Parameter budgets over a track's layers and the size-knob search of BudgetSolver.
// Every size knob of every method gives a count that grows with the knob, so the
// search walks the knob upwards and stops once the count passes the tolerance band.
#include "common/budget.h"

#include <cmath>
#include <algorithm>
#include <cstdlib>

#include "common/methods/registry.h"

namespace sweepd {
namespace {

using nlohmann::json;

// Largest value tried for a knob: no adapter knob exceeds the widest layer dimension.
int64_t KnobLimit(const std::vector<LinearShape>& layers) {
  int64_t limit = 1;
  for (const LinearShape& l : layers) limit = std::max({limit, l.d_in, l.d_out});
  return limit;
}

// An alias knob sets its targets (JORA's S: the same number of rotation slots on both sides).
json WithKnob(const json& settings, const std::string& knob, int64_t value) {
  return methods::WithOption(settings, knob, value);
}

}  // namespace

Result<int64_t> CountForLayers(const nlohmann::json& settings, const std::vector<LinearShape>& layers) {
  int64_t total = 0;
  for (const LinearShape& l : layers) {
    Result<int64_t> c = CountTrainableParameters(settings, l);
    if (!c.ok()) return c;
    total += *c;
  }
  return total;
}

BudgetSolver::BudgetSolver(std::vector<LinearShape> layers, int64_t reference_count, double tolerance)
    : layers_(std::move(layers)), reference_count_(reference_count), tolerance_(tolerance) {}

std::string BudgetSolver::DefaultKnob(const std::string& method) {
  const methods::MethodInfo* m = methods::FindMethod(method);
  return m == nullptr ? "" : m->size_knob;
}

bool BudgetSolver::WithinTolerance(int64_t count) const {
  const double ref = static_cast<double>(reference_count_);
  return std::fabs(static_cast<double>(count) - ref) <= tolerance_ * ref;
}

Result<BudgetMatch> BudgetSolver::Evaluate(const nlohmann::json& settings) const {
  Result<int64_t> c = CountForLayers(settings, layers_);
  if (!c.ok()) return c.status();
  BudgetMatch match;
  match.settings = settings;
  match.count = *c;
  match.ratio = static_cast<double>(*c) / static_cast<double>(reference_count_);
  match.found = WithinTolerance(*c);
  if (!match.found) {
    const std::string method = settings.value("method", "?");
    const std::string knob = DefaultKnob(method);
    match.reason = (knob.empty() ? method + " has no size knob; its" : "with " + knob + " fixed, the") + " count " +
                   std::to_string(*c) + " is " + std::to_string(match.ratio) + "x the reference " +
                   std::to_string(reference_count_);
  }
  return match;
}

Result<BudgetMatch> BudgetSolver::Match(const nlohmann::json& settings, const std::string& knob_in) const {
  if (!settings.is_object() || !settings.contains("method") || !settings["method"].is_string()) {
    return Status::InvalidArgument("adapter settings need a string 'method', got " + settings.dump());
  }
  const std::string method = settings["method"].get<std::string>();
  const std::string knob = knob_in.empty() ? DefaultKnob(method) : knob_in;
  BudgetMatch match;
  if (knob.empty()) return Evaluate(settings);  // no size knob: the count is what it is

  const double upper = static_cast<double>(reference_count_) * (1.0 + tolerance_);
  int64_t best_value = -1, best_count = 0;
  int64_t below_value = -1, below_count = 0, above_value = -1, above_count = 0;
  int64_t min_count = -1, max_count = -1, min_value = -1, max_value = -1;
  std::string last_error;
  const int64_t limit = KnobLimit(layers_);
  for (int64_t v = 1; v <= limit; ++v) {
    Result<int64_t> c = CountForLayers(WithKnob(settings, knob, v), layers_);
    if (!c.ok()) {
      last_error = c.status().message();
      continue;
    }
    if (min_count < 0) min_count = *c, min_value = v;
    max_count = *c, max_value = v;
    if (WithinTolerance(*c)) {
      if (best_value < 0 || std::llabs(*c - reference_count_) < std::llabs(best_count - reference_count_)) {
        best_value = v, best_count = *c;
      }
    } else if (*c < reference_count_) {
      below_value = v, below_count = *c;
    } else if (above_value < 0) {
      above_value = v, above_count = *c;
    }
    if (static_cast<double>(*c) > upper) break;
  }
  if (best_value >= 0) {
    match.found = true;
    match.settings = WithKnob(settings, knob, best_value);
    match.count = best_count;
    match.ratio = static_cast<double>(best_count) / static_cast<double>(reference_count_);
    return match;
  }
  match.settings = settings;
  if (min_count < 0) {
    match.reason = "no value of " + knob + " fits these layers: " + last_error;
    return match;
  }
  std::string reason = "no " + knob + " gives " + std::to_string(reference_count_) + " ±" +
                       std::to_string(static_cast<int>(std::lround(tolerance_ * 100))) + "%; reachable: " +
                       knob + "=" + std::to_string(min_value) + " -> " + std::to_string(min_count);
  if (below_value >= 0 && below_value != min_value) {
    reason += ", " + knob + "=" + std::to_string(below_value) + " -> " + std::to_string(below_count);
  }
  if (above_value >= 0) {
    reason += ", " + knob + "=" + std::to_string(above_value) + " -> " + std::to_string(above_count);
  } else if (below_value != max_value) {
    reason += ", at most " + knob + "=" + std::to_string(max_value) + " -> " + std::to_string(max_count);
  } else {
    reason += " (the most this knob reaches)";
  }
  match.reason = reason;
  match.count = above_value >= 0 ? above_count : max_count;
  match.ratio = static_cast<double>(match.count) / static_cast<double>(reference_count_);
  return match;
}

}  // namespace sweepd
