// The catalogue of result columns and of table kinds, as data: a column is an id, a
// header, a unit, which direction is better and how to read it from one job's result;
// a table kind is the list of column ids it shows (the seed design's Tables 1-5 and the
// SORA paper's rotation-rank table).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "client/param_breakdown.h"
#include "client/result_table.h"

namespace sweepd::client {

// One job's value in a column: a number, or text (core type), or nothing.
struct MetricValue {
  std::optional<double> number;
  std::string text;
};

struct ColumnDef {
  Column column;
  std::function<MetricValue(const ResultRecord&)> extract;
};

// Column definitions for a table over `tasks` (fixed columns, then one per task for the
// per-task templates). `breakdowns` computes parameter components; it must outlive the
// returned definitions.
// `shots`: few-shot counts by score name, for the headers ("ARC-C acc_norm 25-shot").
std::vector<ColumnDef> ColumnCatalogue(const std::vector<std::string>& tasks,
                                       ParamBreakdownCache& breakdowns,
                                       const std::map<std::string, int64_t>& shots = {});

struct TableKind {
  std::string name;
  std::string title;                      // "Main results", ...
  bool label_by_axes = false;             // rows named by swept settings instead of the method
  std::vector<std::string> default_axes;  // tried in order; empty: every varying adapter setting
  // Column ids; an entry "@a_,b_" expands to a_<task>, b_<task> for each task in turn.
  std::vector<std::string> columns;
  bool per_job = false;
  std::string note;
};
const std::vector<TableKind>& TableKindList();
const TableKind* FindTableKind(const std::string& name);

// Display names: "arc_challenge" -> "ARC-C", score names with their metric
// ("arc_challenge.acc_norm" -> "ARC-C acc_norm", "gsm8k.exact_match.strict" -> "GSM8K EM
// strict"), "lora" -> "LoRA"; unknown names unchanged.
std::string TaskDisplayName(const std::string& task);
// The key of an eval entry's scores in results: its score name ("arc_challenge.acc_norm"),
// or the bare task for configurations written before scores carried their metric.
std::string ScoreKeyOf(const nlohmann::json& eval_entry);
// Few-shot counts by score key over the records' eval entries.
std::map<std::string, int64_t> FewshotCounts(const std::vector<const ResultRecord*>& records);
std::string MethodDisplayName(const std::string& method);
// Tasks in the order the seed design's tables list them, unknown ones after, by name.
std::vector<std::string> OrderTasks(std::vector<std::string> tasks);

}  // namespace sweepd::client
