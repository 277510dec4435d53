// sweepctl results and export: result tables (table kinds in table_columns.h) in text,
// Markdown, CSV, LaTeX or JSON. `results` shows one row per job by default; `export`
// writes the paper tables, one row per configuration with mean ± std over seeds.
#include <fstream>
#include <iostream>

#include "client/adapter_export.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/result_table.h"
#include "client/table_format.h"

namespace sweepd::client {
namespace {

struct ResultsArgs {
  std::string sweep;
  std::string format;
  std::string kind;
  bool per_job = false;
  bool by_config = false;
  std::vector<std::string> group_by;
  std::vector<std::string> filters;
  std::vector<std::string> columns;
  std::vector<std::string> axes;
  bool fragment = false;
  std::string out_file;
  std::string title;
  std::string adapters_dir;  // export --adapters
};

std::string LabelFor(const std::string& sweep, const std::string& kind) {
  std::string label = "tab:";
  for (char ch : sweep.empty() ? std::string("all") : sweep) {
    label += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '-';
  }
  return label + "-" + kind;
}

int RunResults(const ResultsArgs& args, bool is_export, const CliContext& ctx) {
  std::string format_name = args.format;
  if (format_name.empty()) format_name = ctx.json() ? "json" : (is_export ? "md" : "text");
  auto format = ParseTableFormat(format_name);
  if (!format.ok()) return ctx.Fail(format.status());

  TableOptions options;
  options.kind = !args.kind.empty() ? args.kind : (is_export || args.by_config ? "main" : "jobs");
  options.per_job = args.per_job;
  options.group_by = args.group_by;
  options.columns = args.columns;
  options.axes = args.axes;
  for (const auto& text : args.filters) {
    auto f = ParseFilter(text);
    if (!f.ok()) return ctx.Fail(f.status());
    options.filters.push_back(*f);
  }

  auto source = ctx.OpenSource();
  if (!source.ok()) return ctx.Fail(source.status());
  auto records = (*source)->QueryResults(args.sweep);
  if (!records.ok()) return ctx.Fail(records.status());
  auto table = BuildTable(*records, options);
  if (!table.ok()) return ctx.Fail(table.status());
  table->title = !args.title.empty() ? args.title
                                     : table->title + (args.sweep.empty() ? "" : " (" + args.sweep + ")");
  if (table->rows.empty() && *format == TableFormat::kText) {
    std::cerr << "no results yet" << (args.sweep.empty() ? "" : " for sweep '" + args.sweep + "'")
              << "; see progress with `sweepctl status " << (args.sweep.empty() ? "SWEEP" : args.sweep) << "`\n";
  }
  RenderOptions render;
  render.latex_standalone = !args.fragment;
  render.latex_label = LabelFor(args.sweep, options.kind);
  const std::string text = RenderTable(*table, *format, render);
  if (args.out_file.empty() || args.out_file == "-") {
    std::cout << text;
  } else {
    std::ofstream out(args.out_file, std::ios::binary);
    out << text;
    if (!out.flush()) return ctx.Fail(Status::Unavailable("cannot write '" + args.out_file + "'"));
  }
  if (!args.adapters_dir.empty()) {
    auto copied = ExportBestAdapters(*records, options.filters, args.adapters_dir);
    if (!copied.ok()) return ctx.Fail(copied.status());
    std::cerr << *copied << "\n";
  }
  return kExitOk;
}

void AddTableOptions(CLI::App* cmd, ResultsArgs& a) {
  cmd->add_option("--format,-f", a.format, "text, md, csv, latex or json");
  std::string kinds;
  for (const auto& k : TableKinds()) kinds += (kinds.empty() ? "" : "|") + k;
  cmd->add_option("--kind", a.kind,
                  kinds + ": main comparison (Tables 1-2), ablation (Table 3), sweep over a "
                          "setting with coverage k/d (Table 4), rotation rank r_p (SORA), "
                          "parameter budget (Table 5), one row per job");
  cmd->add_flag("--per-job", a.per_job, "one row per job instead of per configuration");
  cmd->add_option("--group-by", a.group_by,
                  "group rows by these paths instead of the configuration minus seed "
                  "(e.g. method,track or adapter.r)")
      ->delimiter(',');
  cmd->add_option("--filter", a.filters,
                  "keep jobs where PATH=VALUE or PATH!=VALUE (method, track, seed, adapter.r, "
                  "train.lr, result.steps, ...); repeatable");
  cmd->add_option("--columns", a.columns,
                  "metric columns to show, in order (e.g. params,delta_gsm8k,tradeoff); an "
                  "unknown id lists the valid ones")
      ->delimiter(',');
  cmd->add_option("--axis", a.axes, "sweep/rank tables: the swept settings (e.g. S_L,k or r_p)")
      ->delimiter(',');
  cmd->add_flag("--fragment", a.fragment,
                "LaTeX: only the table environment, to \\input into a paper (needs \\usepackage{booktabs}); "
                "default: a whole document that pdflatex compiles as it is");
  cmd->add_option("--out,-o", a.out_file, "write to this file instead of stdout");
  cmd->add_option("--title", a.title, "table title / LaTeX caption");
}

}  // namespace

void AddResultsCommands(CLI::App& app, CliContext& ctx) {
  auto results_args = std::make_shared<ResultsArgs>();
  CLI::App* results = app.add_subcommand(
      "results", "results of a sweep's jobs (every sweep when SWEEP is left out), one row per job");
  results->add_option("SWEEP", results_args->sweep, "sweep name");
  results->add_flag("--by-config", results_args->by_config,
                    "one row per configuration, mean ± std over seeds (the main table)");
  AddTableOptions(results, *results_args);
  results->callback([&ctx, results_args] { ctx.exit_code = RunResults(*results_args, false, ctx); });

  auto export_args = std::make_shared<ResultsArgs>();
  CLI::App* exp = app.add_subcommand(
      "export", "a paper table of a sweep: one row per configuration, mean ± std over seeds, best marked");
  exp->add_option("SWEEP", export_args->sweep, "sweep name")->required();
  AddTableOptions(exp, *export_args);
  exp->add_option("--adapters", export_args->adapters_dir,
                  "also copy the best configuration's adapter folders (and merged models) out of the sweep's "
                  "output_dir into this new folder, one seed-N/ each, with best.json");
  exp->callback([&ctx, export_args] { ctx.exit_code = RunResults(*export_args, true, ctx); });
}

}  // namespace sweepd::client
