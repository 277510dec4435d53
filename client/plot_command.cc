// sweepctl plot: SVG figures from the same aggregated tables as `export` — the
// plasticity/stability plane (one point per configuration, error bars = sample std over
// seeds), or a metric against a swept setting (one line per method).
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/result_table.h"
#include "client/svg_plot.h"
#include "client/table_columns.h"

namespace sweepd::client {
namespace {

struct PlotArgs {
  std::string sweep;
  std::string kind = "tradeoff";
  std::string axis;
  std::string metric = "tradeoff";
  std::string plasticity;
  std::string stability;
  std::vector<std::string> filters;
  std::string out_file;
};

// The task of an evaluation role, from the jobs' eval lists ("plasticity", "stability").
std::string TaskWithRole(const std::vector<ResultRecord>& records, const std::string& role) {
  for (const auto& r : records) {
    if (!r.config.contains("eval") || !r.config["eval"].is_array()) continue;
    for (const auto& e : r.config["eval"]) {
      if (e.is_object() && e.value("role", "") == role) return ScoreKeyOf(e);
    }
  }
  return "";
}

Result<PlotSpec> TradeoffPlot(const std::vector<ResultRecord>& records, const PlotArgs& a,
                              const std::vector<Filter>& filters) {
  std::string px = a.plasticity.empty() ? TaskWithRole(records, "plasticity") : a.plasticity;
  std::string sy = a.stability.empty() ? TaskWithRole(records, "stability") : a.stability;
  if (px.empty()) px = "arc_challenge";
  if (sy.empty()) sy = "gsm8k";
  TableOptions options;
  options.columns = {"delta_" + px, "delta_" + sy};
  options.filters = filters;
  auto table = BuildTable(records, options);
  if (!table.ok()) {
    return Status::InvalidArgument(table.status().message() +
                                   " (choose the tasks with --plasticity TASK --stability TASK)");
  }
  PlotSpec spec;
  spec.title = "Plasticity vs stability" + (a.sweep.empty() ? "" : " (" + a.sweep + ")");
  spec.x_label = "plasticity: " + TaskDisplayName(px) + " Δ (points)";
  spec.y_label = "stability: " + TaskDisplayName(sy) + " Δ (points)";
  spec.zero_lines = true;
  for (const auto& row : table->rows) {
    // Columns: Method, n, delta plasticity, delta stability.
    if (!row[2].stat || !row[3].stat) continue;
    PlotPoint p{row[2].stat->mean, row[3].stat->mean, row[2].stat->std, row[3].stat->std, ""};
    spec.series.push_back({row[0].text + " (n=" + std::to_string(row[2].stat->n) + ")", {p}, false});
  }
  return spec;
}

Result<PlotSpec> SweepPlot(const std::vector<ResultRecord>& records, const PlotArgs& a,
                           const std::vector<Filter>& filters) {
  if (a.axis.empty()) {
    return Status::InvalidArgument("--kind sweep needs --axis SETTING (e.g. --axis S_L, --axis r, --axis train.lr)");
  }
  std::string axis = a.axis;
  if (axis == "S") axis = "S_L";  // JORA's S sets S_L = S_R
  if (axis.find('.') == std::string::npos && axis != "seed") axis = "adapter." + axis;
  TableOptions options;
  options.group_by = {"adapter.method", axis};
  options.columns = {a.metric};
  options.filters = filters;
  auto table = BuildTable(records, options);
  if (!table.ok()) return table.status();
  PlotSpec spec;
  std::string header = table->columns.back().header;
  spec.title = header + " by " + a.axis + (a.sweep.empty() ? "" : " (" + a.sweep + ")");
  spec.x_label = a.axis;
  spec.y_label = header + " (mean ± sample std over seeds)";
  for (const auto& row : table->rows) {
    // Columns: method, axis, n, metric.
    char* end = nullptr;
    const double x = std::strtod(row[1].text.c_str(), &end);
    if (row[1].text.empty() || *end != '\0' || !row[3].stat) continue;
    const std::string name = MethodDisplayName(row[0].text);
    auto it = std::find_if(spec.series.begin(), spec.series.end(), [&](const PlotSeries& s) { return s.name == name; });
    if (it == spec.series.end()) {
      spec.series.push_back({name, {}, true});
      it = spec.series.end() - 1;
    }
    it->points.push_back({x, row[3].stat->mean, 0, row[3].stat->std, ""});
  }
  if (spec.series.empty()) {
    return Status::InvalidArgument("no job has a numeric '" + a.axis + "' and a '" + a.metric +
                                   "' value; check the setting's name with `sweepctl status`");
  }
  return spec;
}

int RunPlot(const PlotArgs& a, const CliContext& ctx) {
  std::vector<Filter> filters;
  for (const auto& text : a.filters) {
    auto f = ParseFilter(text);
    if (!f.ok()) return ctx.Fail(f.status());
    filters.push_back(*f);
  }
  auto source = ctx.OpenSource();
  if (!source.ok()) return ctx.Fail(source.status());
  auto records = (*source)->QueryResults(a.sweep);
  if (!records.ok()) return ctx.Fail(records.status());
  auto spec = a.kind == "sweep" ? SweepPlot(*records, a, filters) : TradeoffPlot(*records, a, filters);
  if (!spec.ok()) return ctx.Fail(spec.status());
  const std::string svg = RenderSvg(*spec);
  if (a.out_file.empty() || a.out_file == "-") {
    std::cout << svg;
    return kExitOk;
  }
  std::ofstream out(a.out_file, std::ios::binary);
  out << svg;
  if (!out.flush()) return ctx.Fail(Status::Unavailable("cannot write '" + a.out_file + "'"));
  std::cerr << "wrote " << a.out_file << "\n";
  return kExitOk;
}

}  // namespace

void AddPlotCommand(CLI::App& app, CliContext& ctx) {
  auto a = std::make_shared<PlotArgs>();
  CLI::App* plot = app.add_subcommand("plot", "an SVG figure of a sweep's results");
  plot->add_option("SWEEP", a->sweep, "sweep name")->required();
  plot->add_option("--kind", a->kind,
                   "tradeoff: plasticity Δ against stability Δ, one point per configuration; "
                   "sweep: --metric against --axis, one line per method")
      ->check(CLI::IsMember({"tradeoff", "sweep"}));
  plot->add_option("--axis", a->axis, "sweep: the swept setting (S_L, k, r, r_p, train.lr, ...)");
  plot->add_option("--metric", a->metric, "sweep: the column to plot (tradeoff, avg_delta, delta_gsm8k, ...)");
  plot->add_option("--plasticity", a->plasticity, "tradeoff: x task (default: the eval with role plasticity)");
  plot->add_option("--stability", a->stability, "tradeoff: y task (default: the eval with role stability)");
  plot->add_option("--filter", a->filters, "keep jobs where PATH=VALUE or PATH!=VALUE; repeatable");
  plot->add_option("--out,-o", a->out_file, "write the SVG here (default stdout)");
  plot->callback([&ctx, a] { ctx.exit_code = RunPlot(*a, ctx); });
}

}  // namespace sweepd::client
