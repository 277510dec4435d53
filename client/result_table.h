// ResultTable: results grouped into rows (one per configuration, or one per job) with
// mean ± sample std over the seeds of each group, as data that every output format
// renders. Which columns a table has is described by data (table_columns.h), not code.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "client/records.h"
#include "common/status.h"

namespace sweepd::client {

// Mean, sample standard deviation (n - 1 in the denominator) and count of one metric.
struct Stat {
  double mean = 0;
  double std = 0;  // 0 when n < 2
  int n = 0;
};
Stat Summarize(const std::vector<double>& values);

enum class Better { kNone, kHigher, kLower };
// How a number is written: counts of parameters (6.29M), percentages, bytes (GiB), a
// signed change (+1.20), or a plain number with `precision` decimals.
enum class Unit { kNumber, kSigned, kParams, kPercent, kBytes, kText };

struct Column {
  std::string id;      // stable, for --columns, CSV and JSON: "delta_gsm8k"
  std::string header;  // for people: "GSM8K Δ"
  std::string group;   // columns sharing a group get one spanning header in LaTeX ("GSM8K")
  std::string sub;     // the header under the group ("Δ")
  Unit unit = Unit::kNumber;
  int precision = 2;
  Better better = Better::kNone;
  bool show_std = true;  // false where every seed has the same value (parameter counts)
  bool is_label = false; // identifies the row rather than measuring it

  // Builders, so that column tables read as data: Column::Of("params", "Params").In(Unit::kParams).
  static Column Of(std::string id, std::string header) {
    Column c;
    c.id = std::move(id);
    c.header = std::move(header);
    return c;
  }
  static Column Label(std::string id, std::string header) {
    Column c = Of(std::move(id), std::move(header));
    c.unit = Unit::kText;
    c.show_std = false;
    c.is_label = true;
    return c;
  }
  Column In(Unit u, int decimals = 2) const { Column c = *this; c.unit = u; c.precision = decimals; return c; }
  Column Decimals(int p) const { Column c = *this; c.precision = p; return c; }
  Column HigherIsBetter() const { Column c = *this; c.better = Better::kHigher; return c; }
  Column LowerIsBetter() const { Column c = *this; c.better = Better::kLower; return c; }
  Column NoStd() const { Column c = *this; c.show_std = false; return c; }
  Column Under(std::string g, std::string s) const {
    Column c = *this;
    c.group = std::move(g);
    c.sub = std::move(s);
    return c;
  }
};

struct Cell {
  std::string text;           // label columns and text-valued metrics
  std::optional<Stat> stat;   // numeric metrics; empty when no job of the row has it
  bool best = false;          // the best value of its column
};

struct Table {
  std::string title;
  std::string note;           // a line under the table (what Δ and trade-off mean)
  std::vector<Column> columns;
  std::vector<std::vector<Cell>> rows;
  bool per_job = false;       // one row per job: no std, no n column
};

// A condition on a job, `path=value` or `path!=value`; path is a dotted path into the
// job configuration (aliases: method, track, seed, sweep) or `result.` + a path into
// its final metrics line.
struct Filter {
  std::string path;
  std::string value;
  bool negate = false;
};
Result<Filter> ParseFilter(const std::string& text);
bool MatchesFilter(const ResultRecord& r, const Filter& f);

// Whether a result is a training job's (not the base model's evaluation, not a merge job).
bool IsTrainingResult(const ResultRecord& r);
// A job's configuration minus its seed and identity fields, flattened: the rows of the tables.
std::map<std::string, std::string> ConfigurationKey(const ResultRecord& r);

struct TableOptions {
  std::string kind = "main";             // main | ablation | sweep | rank | budget | jobs
  bool per_job = false;                  // one row per job instead of per configuration
  std::vector<std::string> group_by;     // dotted paths; empty: the configuration minus seed
  std::vector<std::string> axes;         // sweep/rank tables: the swept settings
  std::vector<std::string> columns;      // metric column ids to keep, in this order; empty: all
  std::vector<Filter> filters;
  std::string title;                     // empty: made from the sweep and kind
};

// The names of the table kinds, for help texts and errors.
const std::vector<std::string>& TableKinds();

// Builds the table of `records` (base-model evaluations are left out). An error names an
// unknown kind, column or path and lists the valid ones.
Result<Table> BuildTable(const std::vector<ResultRecord>& records, const TableOptions& options);

// Reads a dotted path of a job: aliases first, then the configuration, or `result.`.
const nlohmann::json* LookupPath(const ResultRecord& record, const std::string& path);
// A JSON value as a short human string: strings bare, 1e-4 not 0.0001000.
std::string ValueText(const nlohmann::json& v);

}  // namespace sweepd::client
