// sweepctl list, status, cancel and retry: the sweep's jobs and their states.
#include <ctime>
#include <iostream>

#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/table_columns.h"
#include "client/table_format.h"

namespace sweepd::client {
namespace {

std::string UtcTime(int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string SweepState(const SweepInfo& s) {
  if (s.cancelled) return "cancelled";
  if (!s.Finished()) return "running";
  return s.Count("failed") > 0 ? "finished with failures" : "finished";
}

nlohmann::json SweepJson(const SweepInfo& s) {
  return {{"name", s.name},         {"submitted_ms", s.submitted_ms}, {"total_jobs", s.total_jobs},
          {"counts", s.counts},     {"priority", s.priority},         {"cancelled", s.cancelled},
          {"state", SweepState(s)}};
}

// "8/12 succeeded, 2 running, 1 queued, 1 failed" (states with no jobs left out).
std::string CountsLine(const SweepInfo& s) {
  std::string line = std::to_string(s.Count("succeeded")) + "/" + std::to_string(s.total_jobs) + " succeeded";
  for (const auto& state : JobStates()) {
    if (state == "succeeded" || s.Count(state) == 0) continue;
    line += ", " + std::to_string(s.Count(state)) + " " + state;
  }
  return line;
}

std::string Shorten(std::string s, size_t max) {
  for (char& ch : s) {
    if (ch == '\n' || ch == '\t') ch = ' ';
  }
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

int RunList(const CliContext& ctx) {
  auto source = ctx.OpenSource();
  if (!source.ok()) return ctx.Fail(source.status());
  auto sweeps = (*source)->ListSweeps();
  if (!sweeps.ok()) return ctx.Fail(sweeps.status());
  if (ctx.json()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : *sweeps) out.push_back(SweepJson(s));
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  if (sweeps->empty()) {
    std::cout << "no sweeps yet; submit one with: sweepctl submit sweeps/demo-cpu.yaml\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : *sweeps) {
    rows.push_back({s.name, UtcTime(s.submitted_ms), std::to_string(s.total_jobs),
                    std::to_string(s.Count("succeeded")),
                    std::to_string(s.Count("running") + s.Count("leased")),
                    std::to_string(s.Count("queued") + s.Count("blocked")), std::to_string(s.Count("failed")),
                    SweepState(s)});
  }
  std::cout << RenderPlainTable({"Sweep", "Submitted", "Jobs", "Done", "Running", "Waiting", "Failed", "State"},
                                rows, {false, false, true, true, true, true, true, false});
  return kExitOk;
}

int RunStatus(const std::string& sweep, const CliContext& ctx) {
  auto source = ctx.OpenSource();
  if (!source.ok()) return ctx.Fail(source.status());
  auto detail = (*source)->GetSweep(sweep);
  if (!detail.ok()) return ctx.Fail(detail.status());
  if (ctx.json()) {
    nlohmann::json jobs = nlohmann::json::array();
    for (const auto& j : detail->jobs) {
      jobs.push_back({{"job_id", j.job_id},     {"kind", j.kind},
                      {"state", j.state},       {"method", j.method},
                      {"track", j.track},       {"seed", j.seed},
                      {"trainable_params", j.trainable_params}, {"attempts", j.attempts},
                      {"last_outcome", j.last_outcome}, {"last_error", j.last_error},
                      {"depends_on", j.depends_on}});
    }
    std::cout << nlohmann::json({{"sweep", SweepJson(detail->summary)}, {"jobs", jobs}}).dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "sweep " << sweep << ": " << CountsLine(detail->summary) << " ("
            << SweepState(detail->summary) << ")\n\n";
  std::vector<std::vector<std::string>> rows;
  int ordinal = 0;
  for (const auto& j : detail->jobs) {
    std::string note = j.last_error.empty() ? j.last_outcome : j.last_outcome + ": " + j.last_error;
    rows.push_back({std::to_string(++ordinal), j.job_id, j.kind,
                    j.kind == "train" ? MethodDisplayName(j.method) : "-", j.track, std::to_string(j.seed),
                    j.state, std::to_string(j.attempts), Shorten(note, 60)});
  }
  std::cout << RenderPlainTable({"#", "Job", "Kind", "Method", "Track", "Seed", "State", "Attempts", "Last outcome"},
                                rows, {true, false, false, false, false, true, false, true, false});
  if (detail->summary.Count("failed") > 0) {
    std::cout << "\nsee a failure with `sweepctl logs JOB`; run failed jobs again with `sweepctl retry "
              << sweep << "`\n";
  }
  return kExitOk;
}

int RunCancel(const std::string& sweep, const CliContext& ctx) {
  auto source = ctx.OpenSource();
  if (!source.ok()) return ctx.Fail(source.status());
  auto n = (*source)->CancelSweep(sweep);
  if (!n.ok()) return ctx.Fail(n.status());
  if (ctx.json()) {
    std::cout << nlohmann::json({{"sweep", sweep}, {"jobs_cancelled", *n}}).dump(2) << "\n";
  } else {
    std::cout << "cancelled " << *n << " job" << (*n == 1 ? "" : "s") << " of sweep '" << sweep
              << "'; running trainers are stopped at their next heartbeat\n";
  }
  return kExitOk;
}

int RunRetry(const std::string& sweep, std::vector<std::string> job_ids, const CliContext& ctx) {
  auto source = ctx.OpenSource();
  if (!source.ok()) return ctx.Fail(source.status());
  if (job_ids.empty()) {
    auto detail = (*source)->GetSweep(sweep);
    if (!detail.ok()) return ctx.Fail(detail.status());
    for (const auto& j : detail->jobs) {
      if (j.state == "failed") job_ids.push_back(j.job_id);
    }
    if (job_ids.empty()) {
      if (ctx.json()) {
        std::cout << nlohmann::json({{"sweep", sweep}, {"jobs_requeued", 0}}).dump(2) << "\n";
      } else {
        std::cout << "sweep '" << sweep << "' has no failed jobs; nothing to retry\n";
      }
      return kExitOk;
    }
  }
  auto n = (*source)->RetryJobs(sweep, job_ids);
  if (!n.ok()) return ctx.Fail(n.status());
  if (ctx.json()) {
    std::cout << nlohmann::json({{"sweep", sweep}, {"jobs_requeued", *n}}).dump(2) << "\n";
  } else {
    std::cout << "queued " << *n << " job" << (*n == 1 ? "" : "s") << " of sweep '" << sweep
              << "' again; follow them with: sweepctl watch " << sweep << "\n";
  }
  return kExitOk;
}

}  // namespace

void AddSweepCommands(CLI::App& app, CliContext& ctx) {
  app.add_subcommand("list", "list sweeps with their job counts")->callback([&ctx] { ctx.exit_code = RunList(ctx); });

  auto status_sweep = std::make_shared<std::string>();
  CLI::App* status = app.add_subcommand("status", "a sweep's jobs with their states and last outcomes");
  status->add_option("SWEEP", *status_sweep, "sweep name")->required();
  status->callback([&ctx, status_sweep] { ctx.exit_code = RunStatus(*status_sweep, ctx); });

  auto cancel_sweep = std::make_shared<std::string>();
  CLI::App* cancel = app.add_subcommand("cancel", "cancel a sweep: queued jobs are dropped, running ones stopped");
  cancel->add_option("SWEEP", *cancel_sweep, "sweep name")->required();
  cancel->callback([&ctx, cancel_sweep] { ctx.exit_code = RunCancel(*cancel_sweep, ctx); });

  struct RetryArgs {
    std::string sweep;
    std::vector<std::string> jobs;
  };
  auto retry_args = std::make_shared<RetryArgs>();
  CLI::App* retry = app.add_subcommand("retry", "queue a sweep's failed jobs again (or only the JOBs named)");
  retry->add_option("SWEEP", retry_args->sweep, "sweep name")->required();
  retry->add_option("JOB", retry_args->jobs, "job ids (default: every failed job of the sweep)");
  retry->callback([&ctx, retry_args] { ctx.exit_code = RunRetry(retry_args->sweep, retry_args->jobs, ctx); });
}

}  // namespace sweepd::client
