// SweepDocument: a sweep spec read from YAML into typed fields, before grid expansion.
// Every value keeps where it was written, so later checks (budgets, tracks) can point
// at the line that caused them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/job_config.h"
#include "spec/sweep_spec.h"

namespace sweepd::spec {

// Where something was written: the problem's file, line, column and field.
struct Location {
  int line = 0;
  int column = 0;
  std::string field;
};

struct BudgetReference {
  nlohmann::json settings;  // {"method": "lora", "r": 16}
  double tolerance = 0.05;
  Location where;
};

// One value list of a method block; a scalar in the spec is a list of one.
struct GridAxis {
  std::string key;  // an adapter option, or S, lr, lr_theta, lr_core
  std::vector<nlohmann::json> values;
  Location where;
};

struct MethodBlock {
  std::string method;
  std::vector<GridAxis> axes;  // in the order written
  bool budget_report = false;  // `budget: report`
  std::optional<BudgetReference> budget;
  std::string match;  // the knob BudgetSolver picks; empty: none
  std::string init_from;  // an absolute adapter folder every job of the block starts from; empty: none
  Location init_from_where;
  Location where;
};

struct TrackEntry {
  TrackSpec track;
  Location where;
};

struct SweepDocument {
  std::string name;
  int priority = 0;
  int max_attempts = 3;
  ModelSpec model;
  Location model_where;
  std::vector<TrackEntry> tracks;
  std::optional<BudgetReference> budget;
  TrainSpec train;
  std::vector<EvalSpec> eval;
  double tradeoff_lambda = 1.0;
  std::vector<int64_t> seeds;
  std::vector<MethodBlock> methods;
  std::string device = "cpu";
  int64_t memory_bytes = 0;
  int64_t gpus_per_job = 1;  // resources.gpus_per_job: devices per train job (data parallel)
  Location methods_where;
  std::string output_dir;    // absolute; empty: none (JobConfig::output_dir)
  std::optional<MergeSpec> merge;  // `merge:`: one merge job after every train job (from_job unset here)
};

// Reads `yaml` into a document, appending every problem found to `problems` (YAML
// syntax, unknown keys, wrong types, bad values, empty lists). The document is usable
// for expansion only when no problem was added. At most kMaxReportedProblems are added; the
// number of the others is added to `*omitted` when given.
SweepDocument ReadSweepDocument(const std::string& yaml, const std::string& file,
                                std::vector<SpecProblem>& problems, size_t* omitted = nullptr);

}  // namespace sweepd::spec
