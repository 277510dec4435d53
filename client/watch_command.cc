// sweepctl watch: follows a sweep until every job has ended. Exit 0 when all succeeded,
// 6 when some failed or were cancelled, so scripts can chain on it.
#include <unistd.h>

#include <chrono>
#include <iostream>

#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/progress_view.h"

namespace sweepd::client {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int RunWatch(const std::string& sweep, bool plain, const CliContext& ctx) {
  auto source = ctx.OpenSource();
  if (!source.ok()) return ctx.Fail(source.status());
  ProgressView view(std::cout, !plain && !ctx.json() && isatty(STDOUT_FILENO));
  SweepProgress last;
  Status st = (*source)->WatchSweep(sweep, [&](const SweepProgress& p) {
    last = p;
    if (ctx.json()) {
      nlohmann::json running = nlohmann::json::array();
      for (const auto& r : p.running) {
        running.push_back({{"job_id", r.job_id}, {"step", r.step}, {"total_steps", r.total_steps},
                           {"loss", r.loss}, {"tokens_per_s", r.tokens_per_s}, {"worker", r.worker}});
      }
      std::cout << nlohmann::json({{"sweep", p.summary.name}, {"total_jobs", p.summary.total_jobs},
                                   {"counts", p.summary.counts}, {"running", running},
                                   {"finished", p.finished}})
                       .dump()
                << std::endl;
    } else {
      view.Show(p, NowMs());
    }
    return true;
  });
  if (!st.ok()) return ctx.Fail(st);
  if (!ctx.json()) view.Finish(last);
  const SweepInfo& s = last.summary;
  return s.Count("failed") + s.Count("cancelled") > 0 ? kExitSweepFailed : kExitOk;
}

}  // namespace

void AddWatchCommand(CLI::App& app, CliContext& ctx) {
  struct WatchArgs {
    std::string sweep;
    bool plain = false;
  };
  auto args = std::make_shared<WatchArgs>();
  CLI::App* watch = app.add_subcommand(
      "watch", "follow a sweep until it ends: progress, counts by state, running jobs, ETA "
               "(plain lines when not on a terminal); exit 6 if jobs failed");
  watch->add_option("SWEEP", args->sweep, "sweep name")->required();
  watch->add_flag("--plain", args->plain, "plain progress lines even on a terminal");
  watch->callback([&ctx, args] { ctx.exit_code = RunWatch(args->sweep, args->plain, ctx); });
}

}  // namespace sweepd::client
