// Grouping and aggregation of results. A configuration is the job's configuration minus
// its seed (and the identity fields job_id, sweep, base_eval_job, base_scores), so the
// seeds of one configuration fall into one row.
#include "client/result_table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "client/table_columns.h"
#include "common/contracts.h"
#include "common/methods/registry.h"

namespace sweepd::client {
namespace {

using nlohmann::json;

const std::set<std::string>& IdentityKeys() {
  static const std::set<std::string> kKeys = {"seed",        "job_id",     "sweep", "base_eval_job",
                                              "base_scores", "output_dir", "devices"};
  return kKeys;
}

void Flatten(const json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (j.is_object() && !j.empty()) {
    for (const auto& [k, v] : j.items()) Flatten(v, prefix.empty() ? k : prefix + "." + k, out);
    return;
  }
  out[prefix] = ValueText(j);
}

std::map<std::string, std::string> ConfigurationOf(const ResultRecord& r) {
  std::map<std::string, std::string> flat;
  if (!r.config.is_object()) return flat;
  json c = r.config;
  for (const auto& k : IdentityKeys()) c.erase(k);
  Flatten(c, "", flat);
  return flat;
}

std::string ShortPath(const std::string& path) {
  if (path == "track.name") return "track";
  if (path == "model.source") return "model";
  if (path == "adapter.method") return "method";
  if (path.rfind("adapter.", 0) == 0) return path.substr(8);
  if (path.rfind("train.", 0) == 0) return path.substr(6);
  return path;
}

// Rows are training jobs: the base model's evaluation and merge jobs (kind merge) have none of
// a row's numbers.
bool IsTrainingJob(const ResultRecord& r) {
  auto kind = [](const json& j) {
    auto it = j.is_object() ? j.find("kind") : j.end();
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string k = kind(r.config).empty() ? kind(r.result) : kind(r.config);
  return k.empty() || k == "train";
}

bool Matches(const ResultRecord& r, const Filter& f) {
  const json* v = LookupPath(r, f.path);
  bool equal = false;
  if (v != nullptr) {
    std::string text = ValueText(*v);
    equal = text == f.value;
    if (!equal && v->is_number()) {
      char* end = nullptr;
      double want = std::strtod(f.value.c_str(), &end);
      equal = end != f.value.c_str() && *end == '\0' && want == v->get<double>();
    }
  }
  return f.negate ? !equal : equal;
}

struct Group {
  std::vector<const ResultRecord*> members;
  std::map<std::string, std::string> configuration;
};

// Paths whose value differs between groups (missing counts as a value).
std::set<std::string> VaryingPaths(const std::vector<Group>& groups,
                                   const std::function<bool(const Group&)>& include) {
  std::map<std::string, std::set<std::string>> values;
  std::set<std::string> all_paths;
  int n = 0;
  for (const auto& g : groups) {
    if (!include(g)) continue;
    ++n;
    for (const auto& [p, v] : g.configuration) all_paths.insert(p);
  }
  for (const auto& g : groups) {
    if (!include(g)) continue;
    for (const auto& p : all_paths) {
      auto it = g.configuration.find(p);
      values[p].insert(it == g.configuration.end() ? std::string("\x01missing") : it->second);
    }
  }
  std::set<std::string> varying;
  if (n < 2) return varying;
  for (const auto& [p, vs] : values) {
    if (vs.size() > 1) varying.insert(p);
  }
  return varying;
}

std::string MethodLabel(const Group& g, const std::vector<Group>& groups) {
  auto get = [&](const std::string& p) -> std::string {
    auto it = g.configuration.find(p);
    return it == g.configuration.end() ? "" : it->second;
  };
  const std::string method = get("adapter.method");
  // The settings that name a configuration, as the method registers them: LoRA(r=16),
  // JORA(core=diag, S_L=96, k=24), OFT(oft_block_size=16).
  std::vector<std::string> keys;
  if (const methods::MethodInfo* info = methods::FindMethod(method)) {
    for (const auto& k : info->label_keys) {
      if (!get("adapter." + k).empty()) keys.push_back("adapter." + k);
    }
  }
  auto same_method = [&](const Group& other) {
    auto it = other.configuration.find("adapter.method");
    return it != other.configuration.end() && it->second == method;
  };
  for (const auto& p : VaryingPaths(groups, same_method)) {
    if (p.rfind("adapter.", 0) == 0 && std::find(keys.begin(), keys.end(), p) == keys.end()) {
      keys.push_back(p);
    }
  }
  std::vector<std::string> others;
  for (const auto& p : VaryingPaths(groups, [](const Group&) { return true; })) {
    if (p.rfind("adapter.", 0) != 0 && !get(p).empty()) others.push_back(p);
  }
  std::string label = MethodDisplayName(method.empty() ? "?" : method);
  std::string inner;
  for (const auto& k : keys) inner += (inner.empty() ? "" : ", ") + ShortPath(k) + "=" + get(k);
  std::string outer;
  for (const auto& k : others) outer += (outer.empty() ? "" : ", ") + ShortPath(k) + "=" + get(k);
  if (!outer.empty()) inner += (inner.empty() ? "" : "; ") + outer;
  if (!inner.empty()) label += "(" + inner + ")";
  return label;
}

// The metric column ids of a kind, per-task templates expanded.
std::vector<std::string> ExpandColumns(const std::vector<std::string>& entries,
                                       const std::vector<std::string>& tasks) {
  std::vector<std::string> ids;
  for (const auto& e : entries) {
    if (e.empty() || e[0] != '@') {
      ids.push_back(e);
      continue;
    }
    std::vector<std::string> prefixes;
    size_t start = 1;
    while (start <= e.size()) {
      size_t comma = e.find(',', start);
      if (comma == std::string::npos) comma = e.size();
      prefixes.push_back(e.substr(start, comma - start));
      start = comma + 1;
    }
    for (const auto& t : tasks) {
      for (const auto& p : prefixes) ids.push_back(p + t);
    }
  }
  return ids;
}

void MarkBest(Table& table) {
  for (size_t c = 0; c < table.columns.size(); ++c) {
    const Better better = table.columns[c].better;
    if (better == Better::kNone || table.rows.size() < 2) continue;
    std::optional<double> best;
    for (const auto& row : table.rows) {
      if (!row[c].stat) continue;
      double v = row[c].stat->mean;
      if (!best || (better == Better::kHigher ? v > *best : v < *best)) best = v;
    }
    if (!best) continue;
    for (auto& row : table.rows) {
      if (row[c].stat && row[c].stat->mean == *best) row[c].best = true;
    }
  }
}

}  // namespace

bool IsTrainingResult(const ResultRecord& r) { return IsTrainingJob(r); }

bool MatchesFilter(const ResultRecord& r, const Filter& f) { return Matches(r, f); }

std::map<std::string, std::string> ConfigurationKey(const ResultRecord& r) { return ConfigurationOf(r); }

Stat Summarize(const std::vector<double>& values) {
  Stat s;
  s.n = static_cast<int>(values.size());
  if (s.n == 0) return s;
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / s.n;
  if (s.n < 2) return s;
  double ss = 0;
  for (double v : values) ss += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(ss / (s.n - 1));
  return s;
}

std::string ValueText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v.get<double>());
    return buf;
  }
  if (v.is_null()) return "";
  return v.dump();
}

const json* LookupPath(const ResultRecord& record, const std::string& path) {
  static const std::map<std::string, std::string> kAliases = {
      {"method", "adapter.method"}, {"track", "track.name"}, {"model", "model.source"}};
  std::string p = path;
  if (auto it = kAliases.find(p); it != kAliases.end()) p = it->second;
  const json* node = &record.config;
  if (p.rfind("result.", 0) == 0) {
    node = &record.result;
    p = p.substr(7);
  }
  size_t start = 0;
  while (start <= p.size()) {
    size_t dot = p.find('.', start);
    if (dot == std::string::npos) dot = p.size();
    const std::string key = p.substr(start, dot - start);
    if (!node->is_object() || !node->contains(key)) return nullptr;
    node = &(*node)[key];
    start = dot + 1;
  }
  return node;
}

Result<Filter> ParseFilter(const std::string& text) {
  Filter f;
  size_t pos = text.find("!=");
  if (pos != std::string::npos) {
    f.negate = true;
    f.path = text.substr(0, pos);
    f.value = text.substr(pos + 2);
  } else if ((pos = text.find('=')) != std::string::npos) {
    f.path = text.substr(0, pos);
    f.value = text.substr(pos + 1);
  }
  if (f.path.empty()) {
    return Status::InvalidArgument("filter '" + text +
                                   "' is not PATH=VALUE or PATH!=VALUE (e.g. method=lora, "
                                   "track=A, adapter.r=16, result.steps=100)");
  }
  return f;
}

const std::vector<std::string>& TableKinds() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const auto& k : TableKindList()) names.push_back(k.name);
    return names;
  }();
  return kNames;
}

Result<Table> BuildTable(const std::vector<ResultRecord>& records, const TableOptions& options) {
  const TableKind* kind = FindTableKind(options.kind);
  if (kind == nullptr) {
    std::string names;
    for (const auto& n : TableKinds()) names += (names.empty() ? "" : ", ") + n;
    return Status::InvalidArgument("unknown table kind '" + options.kind + "'; choose one of " + names);
  }
  Table table;
  table.per_job = options.per_job || kind->per_job;
  table.title = options.title.empty() ? kind->title : options.title;
  table.note = kind->note;

  std::vector<const ResultRecord*> kept;
  std::vector<std::string> task_list;
  for (const auto& r : records) {
    if (!IsTrainingJob(r)) continue;
    if (!std::all_of(options.filters.begin(), options.filters.end(),
                     [&](const Filter& f) { return Matches(r, f); })) {
      continue;
    }
    kept.push_back(&r);
    if (r.result.contains(metric_key::kScores) && r.result[metric_key::kScores].is_object()) {
      for (const auto& [t, v] : r.result[metric_key::kScores].items()) task_list.push_back(t);
    }
  }
  const std::vector<std::string> tasks = OrderTasks(task_list);

  ParamBreakdownCache breakdowns;
  const std::vector<ColumnDef> catalogue = ColumnCatalogue(tasks, breakdowns, FewshotCounts(kept));
  auto find_def = [&](const std::string& id) -> const ColumnDef* {
    for (const auto& d : catalogue) {
      if (d.column.id == id) return &d;
    }
    return nullptr;
  };
  std::vector<const ColumnDef*> metrics;
  const bool explicit_columns = !options.columns.empty();
  for (const auto& id : explicit_columns ? options.columns : ExpandColumns(kind->columns, tasks)) {
    const ColumnDef* def = find_def(id);
    if (def == nullptr) {
      if (!explicit_columns) continue;
      std::string ids;
      for (const auto& d : catalogue) ids += (ids.empty() ? "" : ", ") + d.column.id;
      return Status::InvalidArgument("unknown column '" + id + "'; the columns of these results are: " + ids);
    }
    // A column no job has (peak memory of an old trainer) is dropped unless asked for.
    bool any = explicit_columns;
    for (const ResultRecord* r : kept) {
      if (any) break;
      MetricValue v = def->extract(*r);
      any = v.number.has_value() || !v.text.empty();
    }
    if (any) metrics.push_back(def);
  }

  // Group the jobs, keeping the grid's order.
  std::vector<Group> groups;
  std::map<std::string, size_t> index;
  for (const ResultRecord* r : kept) {
    std::string key;
    std::map<std::string, std::string> configuration = ConfigurationOf(*r);
    if (table.per_job) {
      key = r->job_id;
    } else if (!options.group_by.empty()) {
      for (const auto& p : options.group_by) {
        const json* v = LookupPath(*r, p);
        key += (v ? ValueText(*v) : std::string()) + "\x1f";
      }
    } else {
      for (const auto& [p, v] : configuration) key += p + "=" + v + "\x1f";
    }
    auto [it, inserted] = index.emplace(key, groups.size());
    if (inserted) groups.push_back({{}, std::move(configuration)});
    groups[it->second].members.push_back(r);
  }

  // Label columns: the grouping paths, the swept axes, or the method with its settings.
  std::vector<std::pair<Column, std::function<std::string(const Group&)>>> labels;
  auto path_label = [](const std::string& p) {
    return [p](const Group& g) {
      const json* v = LookupPath(*g.members.front(), p);
      return v ? ValueText(*v) : std::string();
    };
  };
  if (!options.group_by.empty()) {
    for (const auto& p : options.group_by) {
      labels.push_back({Column::Label(p, ShortPath(p)), path_label(p)});
    }
  } else if (kind->label_by_axes) {
    std::vector<std::string> axes = options.axes;
    if (axes.empty()) {
      for (const auto& p : kind->default_axes) {
        if (std::any_of(kept.begin(), kept.end(), [&](const ResultRecord* r) { return LookupPath(*r, p); })) {
          axes.push_back(p);
        }
      }
    }
    if (axes.empty()) {
      for (const auto& p : VaryingPaths(groups, [](const Group&) { return true; })) {
        if (p.rfind("adapter.", 0) == 0) axes.push_back(p);
      }
    }
    if (axes.empty()) axes.push_back("adapter.method");
    for (auto& p : axes) {
      // An alias in a spec (JORA's `S` sets S_L = S_R) is stored as what it sets: show the first.
      const std::string bare = p.rfind("adapter.", 0) == 0 ? p.substr(8) : p;
      const std::vector<std::string> targets = methods::AliasTargets(bare);
      if (!targets.empty()) p = "adapter." + targets.front();
      if (p.find('.') == std::string::npos && p != "method" && p != "track" && p != "seed") p = "adapter." + p;
      labels.push_back({Column::Label(p, targets.empty() ? ShortPath(p) : bare), path_label(p)});
    }
  } else {
    labels.push_back({Column::Label("method", "Method"),
                      [&groups](const Group& g) { return MethodLabel(g, groups); }});
  }
  if (table.per_job) {
    labels.push_back({Column::Label("seed", "Seed"), path_label("seed")});
    labels.push_back({Column::Label("job_id", "Job"),
                      [](const Group& g) { return g.members.front()->job_id; }});
  }

  for (const auto& l : labels) table.columns.push_back(l.first);
  if (!table.per_job) {
    table.columns.push_back(Column::Of("n", "n").Decimals(0).NoStd());
  }
  for (const ColumnDef* d : metrics) table.columns.push_back(d->column);

  for (const Group& g : groups) {
    std::vector<Cell> row;
    for (const auto& l : labels) row.push_back({l.second(g), std::nullopt, false});
    if (!table.per_job) {
      const double n = static_cast<double>(g.members.size());
      row.push_back({"", Stat{n, 0, static_cast<int>(n)}, false});
    }
    for (const ColumnDef* d : metrics) {
      std::vector<double> values;
      std::string text;
      for (const ResultRecord* r : g.members) {
        MetricValue v = d->extract(*r);
        if (v.number && std::isfinite(*v.number)) values.push_back(*v.number);
        if (text.empty()) text = v.text;
      }
      Cell cell{text, std::nullopt, false};
      if (!values.empty()) cell.stat = Summarize(values);
      row.push_back(std::move(cell));
    }
    table.rows.push_back(std::move(row));
  }
  MarkBest(table);
  return table;
}

}  // namespace sweepd::client
