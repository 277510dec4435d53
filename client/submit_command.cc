// sweepctl submit and validate: specs are parsed by the same library sweepd uses
// (spec/sweep_spec.h), so `validate` and `submit --dry-run` need no server.
#include <cstdio>
#include <iostream>

#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/result_table.h"
#include "client/table_columns.h"
#include "client/table_format.h"
#include "spec/spec_text.h"
#include "spec/sweep_spec.h"

namespace sweepd::client {
namespace {

nlohmann::json ProblemJson(const spec::SpecProblem& p) {
  return {{"file", p.file}, {"line", p.line}, {"column", p.column}, {"field", p.field}, {"message", p.message}};
}

std::string Settings(const nlohmann::json& adapter) {
  std::string out;
  if (!adapter.is_object()) return out;
  for (const auto& [k, v] : adapter.items()) {
    if (k == "method") continue;
    out += (out.empty() ? "" : " ") + k + "=" + ValueText(v);
  }
  return out;
}

std::string BudgetText(const spec::ExpandedJob& j) {
  if (j.config.kind != "train") return "-";
  if (j.reference_params <= 0) return "no reference";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f%% of ", 100.0 * static_cast<double>(j.trainable_params) /
                                                  static_cast<double>(j.reference_params));
  const Column params = Column::Of("", "").In(Unit::kParams);
  Cell ref{"", Stat{static_cast<double>(j.reference_params), 0, 1}, false};
  return buf + FormatCell(ref, params, true) + (j.budget_enforced ? "" : " (report)");
}

// The expanded grid as a table: every job's method, settings, track, seed and parameters.
Table GridTable(const spec::ExpandedSweep& sweep) {
  Table t;
  t.per_job = true;
  auto text = [](const char* id, const char* header) {
    return Column::Label(id, header);
  };
  t.columns = {text("ordinal", "#"),     text("kind", "Kind"),   text("method", "Method"),
               text("settings", "Settings"), text("track", "Track"), text("seed", "Seed"),
               Column::Of("trainable_params", "Params").In(Unit::kParams).NoStd(),
               text("budget", "Budget"), text("job_id", "Job")};
  int ordinal = 0;
  for (const auto& j : sweep.jobs) {
    const bool train = j.config.kind == "train";
    std::optional<Stat> params;
    if (train) params = Stat{static_cast<double>(j.trainable_params), 0, 1};
    auto cell = [](std::string text) { return Cell{std::move(text), std::nullopt, false}; };
    t.rows.push_back({cell(std::to_string(++ordinal)), cell(j.config.kind),
                      cell(train ? MethodDisplayName(j.config.adapter.value("method", "")) : "-"),
                      cell(train ? Settings(j.config.adapter) : ""), cell(j.config.track.name),
                      cell(std::to_string(j.config.seed)), Cell{"", params, false}, cell(BudgetText(j)),
                      cell(j.config.job_id)});
  }
  return t;
}

nlohmann::json GridJson(const spec::ExpandedSweep& sweep) {
  nlohmann::json jobs = nlohmann::json::array();
  for (const auto& j : sweep.jobs) {
    jobs.push_back({{"job_id", j.config.job_id},
                    {"kind", j.config.kind},
                    {"method", j.config.adapter.value("method", "")},
                    {"adapter", j.config.adapter},
                    {"track", j.config.track.name},
                    {"seed", j.config.seed},
                    {"trainable_params", j.trainable_params},
                    {"reference_params", j.reference_params},
                    {"budget_enforced", j.budget_enforced},
                    {"depends_on", j.depends_on}});
  }
  return {{"sweep", sweep.name}, {"jobs", jobs}};
}

// Prints the problems of a spec; returns true when there were none.
bool ReportProblems(const spec::SpecResult& r, const CliContext& ctx, nlohmann::json* json_out) {
  if (ctx.json()) {
    nlohmann::json problems = nlohmann::json::array();
    for (const auto& p : r.problems) problems.push_back(ProblemJson(p));
    (*json_out)["problems"] = problems;
  } else {
    for (const auto& p : r.problems) std::cerr << spec::FormatProblem(p) << "\n";
  }
  return r.ok();
}

int RunValidate(const std::vector<std::string>& files, const CliContext& ctx) {
  int code = kExitOk;
  int read_failure = kExitOk;  // a file that cannot be read wins over a spec with problems
  nlohmann::json all = nlohmann::json::array();
  for (const auto& file : files) {
    Result<std::string> text = spec::ReadSpecText(file);
    if (!text.ok()) {
      read_failure = ctx.Fail(text.status());
      if (ctx.json()) all.push_back({{"file", file}, {"valid", false}, {"error", text.status().message()}});
      continue;
    }
    spec::SpecResult r = spec::ParseSweepSpec(*text, file);
    nlohmann::json entry = {{"file", file}, {"valid", r.ok()}};
    if (!ReportProblems(r, ctx, &entry)) {
      code = kExitInvalidSpec;
      if (!ctx.json()) {
        std::cerr << file << ": " << r.problems.size() << " problem" << (r.problems.size() == 1 ? "" : "s")
                  << "; nothing was submitted\n";
      }
    } else {
      int64_t train = 0;
      for (const auto& j : r.sweep.jobs) train += j.config.kind == "train";
      entry["sweep"] = r.sweep.name;
      entry["jobs"] = r.sweep.jobs.size();
      if (!ctx.json()) {
        std::cout << file << ": ok, sweep '" << r.sweep.name << "', " << r.sweep.jobs.size() << " jobs ("
                  << train << " training, " << r.sweep.jobs.size() - train << " base-model evaluation)\n";
      }
    }
    all.push_back(std::move(entry));
  }
  if (ctx.json()) std::cout << all.dump(2) << "\n";
  return read_failure != kExitOk ? read_failure : code;
}

int RunSubmit(const std::string& file, bool dry_run, const CliContext& ctx) {
  Result<std::string> yaml = spec::ReadSpecText(file);
  if (!yaml.ok()) return ctx.Fail(yaml.status());
  if (dry_run) {
    spec::SpecResult r = spec::ParseSweepSpec(*yaml, file);
    nlohmann::json out = {{"file", file}, {"valid", r.ok()}};
    if (!ReportProblems(r, ctx, &out)) {
      if (ctx.json()) std::cout << out.dump(2) << "\n";
      return kExitInvalidSpec;
    }
    if (ctx.json()) {
      std::cout << GridJson(r.sweep).dump(2) << "\n";
    } else {
      std::cout << RenderTable(GridTable(r.sweep), TableFormat::kText);
      std::cout << "dry run: sweep '" << r.sweep.name << "' would have " << r.sweep.jobs.size()
                << " jobs; nothing was submitted\n";
    }
    return kExitOk;
  }
  // Text that is not UTF-8 cannot travel in the request's string field: the problem is found here.
  if (std::optional<spec::SpecProblem> bad = spec::CheckSpecText(*yaml, file)) {
    const std::string problem = spec::FormatProblem(*bad);
    if (ctx.json()) std::cout << nlohmann::json({{"accepted", false}, {"problems", {problem}}}).dump(2) << "\n";
    else std::cerr << problem << "\n" << file << ": nothing was submitted\n";
    return kExitInvalidSpec;
  }
  auto source = ctx.OpenSource();
  if (!source.ok()) return ctx.Fail(source.status());
  auto outcome = (*source)->Submit(*yaml, file);
  if (!outcome.ok()) return ctx.Fail(outcome.status());
  if (!outcome->accepted) {
    if (ctx.json()) {
      std::cout << nlohmann::json({{"accepted", false}, {"problems", outcome->problems}}).dump(2) << "\n";
    } else {
      for (const auto& p : outcome->problems) std::cerr << p << "\n";
      std::cerr << "sweepd refused " << file << "; fix the problems above (sweepctl validate " << file
                << " checks without submitting)\n";
    }
    return kExitInvalidSpec;
  }
  if (ctx.json()) {
    std::cout << nlohmann::json({{"accepted", true},
                                 {"sweep", outcome->sweep},
                                 {"jobs_total", outcome->jobs_total},
                                 {"jobs_new", outcome->jobs_new},
                                 {"jobs_reused", outcome->jobs_reused}})
                     .dump(2)
              << "\n";
  } else {
    std::cout << "submitted sweep '" << outcome->sweep << "': " << outcome->jobs_total << " jobs ("
              << outcome->jobs_new << " new, " << outcome->jobs_reused << " reused from earlier sweeps)\n"
              << "follow it with: sweepctl watch " << outcome->sweep << "\n";
  }
  return kExitOk;
}

}  // namespace

void AddSubmitCommands(CLI::App& app, CliContext& ctx) {
  struct SubmitArgs {
    std::string file;
    bool dry_run = false;
  };
  auto submit_args = std::make_shared<SubmitArgs>();
  CLI::App* submit = app.add_subcommand("submit", "submit a sweep spec (YAML) to the coordinator");
  submit->add_option("SPEC", submit_args->file, "the sweep spec, e.g. sweeps/demo-cpu.yaml (- reads stdin)")->required();
  submit->add_flag("--dry-run", submit_args->dry_run,
                   "validate and print the expanded grid with parameter budgets; submit nothing");
  submit->callback([&ctx, submit_args] { ctx.exit_code = RunSubmit(submit_args->file, submit_args->dry_run, ctx); });

  auto files = std::make_shared<std::vector<std::string>>();
  CLI::App* validate = app.add_subcommand(
      "validate", "check sweep specs without a server; problems as FILE:LINE:COL: field: message");
  validate->add_option("SPEC", *files, "sweep specs (- reads stdin)")->required();
  validate->callback([&ctx, files] { ctx.exit_code = RunValidate(*files, ctx); });
}

}  // namespace sweepd::client
