// Grid expansion: a SweepDocument becomes the sweep's jobs. Each method block's value
// lists are grid axes; jobs = product of the axes x tracks x seeds, plus one base-model
// evaluation per (model, eval set) that every train job depends on. Parameter budgets
// are checked here, on the layers each track adapts (common/budget.h).
#pragma once

#include <vector>

#include "spec/sweep_document.h"
#include "spec/sweep_spec.h"

namespace sweepd::spec {

// Expands `doc` (read without problems) into jobs; appends a problem for every
// configuration that cannot be counted or lies outside its budget, and for grids over
// `limits.max_jobs`.
ExpandedSweep ExpandSweep(const SweepDocument& doc, const std::string& file, const SpecLimits& limits,
                          std::vector<SpecProblem>& problems);

}  // namespace sweepd::spec
