// sweepctl logs: a job's metric lines (docs/metrics.md) as they arrive, then the tail of
// the trainer's stderr once the job has ended.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/result_table.h"
#include "common/contracts.h"
#include "common/metric_line.h"

namespace sweepd::client {
namespace {

std::string Fixed(double v, const char* fmt) {
  char buf[48];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// One metric line for people; a line that is an error (not a metric line, or sweep-worker's
// "error" line in its place) prints as "error: WHY: EXCERPT", unknown types as they came. Every field is read with its type checked ("step": "twelve" prints the line).
std::string DescribeMetricLine(const std::string& text) {
  if (std::optional<std::string> error = MetricLineError(text)) return "error: " + *error;
  const Result<MetricLine> read = MetricLine::Read(text);
  if (!read.ok()) return text;
  const MetricLine& line = *read;
  auto num = [&](const char* k) { return line.Number(k).value_or(0.0); };
  auto integer = [&](const char* k) { return std::to_string(line.Integer(k).value_or(0)); };
  auto str = [&](const char* k) { return line.Text(k).value_or(std::string()); };
  const std::string& type = line.type();
  const std::string step = std::to_string(line.step().value_or(0));
  if (type == metric_type::kStep) {
    return "step " + step + "/" + integer("total_steps") + "  loss " + Fixed(num("loss"), "%.4f") +
           "  lr " + Fixed(num("lr"), "%.2e") + "  tokens/s " + Fixed(num("tokens_per_s"), "%.0f") +
           "  peak mem " + Fixed(num("peak_mem_bytes") / 1048576.0, "%.1f") + " MiB";
  }
  if (type == metric_type::kEval) {
    return "eval " + str("stage") + "  " + str("task") + " " + Fixed(num("score"), "%.2f") +
           " (n=" + integer("n") + ")";
  }
  if (type == metric_type::kCheckpoint) return "checkpoint at step " + step + ": " + str("path");
  if (type == metric_type::kFinal) {
    const nlohmann::json& j = line.value();
    std::string text_out = "final  kind " + str("kind");
    if (j.contains("final_loss")) text_out += "  loss " + Fixed(num("final_loss"), "%.4f");
    if (j.contains("tokens_per_s")) text_out += "  tokens/s " + Fixed(num("tokens_per_s"), "%.0f");
    if (j.contains(metric_key::kScores) && j[metric_key::kScores].is_object()) {
      for (const auto& [task, v] : j[metric_key::kScores].items()) {
        text_out += "  " + task + " " + ValueText(v);
      }
    }
    if (j.contains("tradeoff")) text_out += "  trade-off " + Fixed(num("tradeoff"), "%+.2f");
    return text_out;
  }
  return text;
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
    if (log->more) continue;  // the next page at once
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
