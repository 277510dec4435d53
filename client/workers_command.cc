// sweepctl workers: the agents sweepd knows, their slots, heartbeats and running jobs.
#include <chrono>
#include <iostream>

#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/progress_view.h"
#include "client/table_format.h"

namespace sweepd::client {
namespace {

int RunWorkers(const CliContext& ctx) {
  auto source = ctx.OpenSource();
  if (!source.ok()) return ctx.Fail(source.status());
  auto workers = (*source)->ListWorkers();
  if (!workers.ok()) return ctx.Fail(workers.status());
  if (ctx.json()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& w : *workers) {
      out.push_back({{"worker_id", w.worker_id}, {"hostname", w.hostname}, {"state", w.state},
                     {"last_heartbeat_ms", w.last_heartbeat_ms}, {"slots", w.slots}, {"labels", w.labels},
                     {"running_jobs", w.running_jobs}});
    }
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  if (workers->empty()) {
    std::cout << "no workers have registered; start one with: sweep-worker --coordinator "
              << ctx.CoordinatorAddress() << "\n";
    return kExitOk;
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::vector<std::vector<std::string>> rows;
  auto join = [](const auto& items) {
    std::string s;
    for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
    return s.empty() ? std::string("-") : s;
  };
  for (const auto& w : *workers) {
    std::vector<std::string> labels;
    for (const auto& [k, v] : w.labels) labels.push_back(k + "=" + v);
    rows.push_back({w.worker_id, w.hostname, w.state,
                    ProgressView::Duration((now - w.last_heartbeat_ms) / 1000) + " ago", join(w.slots),
                    join(w.running_jobs), join(labels)});
  }
  std::cout << RenderPlainTable({"Worker", "Host", "State", "Heartbeat", "Slots", "Running", "Labels"}, rows);
  return kExitOk;
}

}  // namespace

void AddWorkersCommand(CLI::App& app, CliContext& ctx) {
  app.add_subcommand("workers", "the workers sweepd knows: state, last heartbeat, slots, running jobs")
      ->callback([&ctx] { ctx.exit_code = RunWorkers(ctx); });
}

}  // namespace sweepd::client
