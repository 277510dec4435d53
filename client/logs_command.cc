// sweepctl logs: a job's metric lines (docs/metrics.md) as they arrive, then the tail of
// the trainer's stderr once the job has ended.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/result_table.h"

namespace sweepd::client {
namespace {

std::string Fixed(double v, const char* fmt) {
  char buf[48];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// One metric line for people; unknown types print as they came.
std::string DescribeMetricLine(const std::string& line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return line;
  const std::string type = j.value("type", "");
  auto num = [&](const char* k) { return j.contains(k) && j[k].is_number() ? j[k].get<double>() : 0.0; };
  if (type == "step") {
    return "step " + std::to_string(j.value("step", 0)) + "/" + std::to_string(j.value("total_steps", 0)) +
           "  loss " + Fixed(num("loss"), "%.4f") + "  lr " + Fixed(num("lr"), "%.2e") + "  tokens/s " +
           Fixed(num("tokens_per_s"), "%.0f") + "  peak mem " + Fixed(num("peak_mem_bytes") / 1048576.0, "%.1f") +
           " MiB";
  }
  if (type == "eval") {
    return "eval " + j.value("stage", std::string()) + "  " + j.value("task", std::string()) + " " +
           Fixed(num("score"), "%.2f") + " (n=" + std::to_string(j.value("n", 0)) + ")";
  }
  if (type == "checkpoint") {
    return "checkpoint at step " + std::to_string(j.value("step", 0)) + ": " + j.value("path", std::string());
  }
  if (type == "final") {
    std::string text = "final  kind " + j.value("kind", std::string());
    if (j.contains("final_loss")) text += "  loss " + Fixed(num("final_loss"), "%.4f");
    if (j.contains("tokens_per_s")) text += "  tokens/s " + Fixed(num("tokens_per_s"), "%.0f");
    if (j.contains("scores") && j["scores"].is_object()) {
      for (const auto& [task, v] : j["scores"].items()) text += "  " + task + " " + ValueText(v);
    }
    if (j.contains("tradeoff")) text += "  trade-off " + Fixed(num("tradeoff"), "%+.2f");
    return text;
  }
  return line;
}

int RunLogs(const std::string& job, bool follow, const CliContext& ctx) {
  auto source = ctx.OpenSource();
  if (!source.ok()) return ctx.Fail(source.status());
  int64_t after = 0;
  for (;;) {
    auto log = (*source)->GetJobLog(job, after);
    if (!log.ok()) return ctx.Fail(log.status());
    for (const auto& p : log->points) {
      std::cout << (ctx.json() ? p.json : DescribeMetricLine(p.json)) << "\n";
      after = std::max(after, p.seq);
    }
    std::cout.flush();
    const bool ended = IsTerminalState(log->state);
    if (ended || !follow) {
      if (!log->stderr_tail.empty() && !ctx.json()) {
        std::cout << "--- stderr (tail) ---\n" << log->stderr_tail;
        if (log->stderr_tail.back() != '\n') std::cout << "\n";
      }
      if (!ctx.json()) std::cout << "job " << job << " is " << log->state << "\n";
      return kExitOk;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

void AddLogsCommand(CLI::App& app, CliContext& ctx) {
  struct LogsArgs {
    std::string job;
    bool no_follow = false;
  };
  auto args = std::make_shared<LogsArgs>();
  CLI::App* logs = app.add_subcommand(
      "logs", "a job's metric lines, followed until the job ends, then its stderr tail "
              "(--output json: the raw lines)");
  logs->add_option("JOB", args->job, "job id (see `sweepctl status SWEEP`)")->required();
  logs->add_flag("--no-follow", args->no_follow, "print what is there and stop");
  logs->callback([&ctx, args] { ctx.exit_code = RunLogs(args->job, !args->no_follow, ctx); });
}

}  // namespace sweepd::client
