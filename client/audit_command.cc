// sweepctl audit: who submitted, cancelled or retried a sweep or registered a worker, when,
// and how it ended -- sweepd's audit table, through sweepd (admin token) or a --db file.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <memory>
#include <regex>

#include <nlohmann/json.hpp>

#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/table_format.h"

namespace sweepd::client {
namespace {

int64_t AuditNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// `--since`: a span back from now (30s, 90m, 2h, 7d) or a UTC time (2026-12-03,
// 2026-12-03T17:05, 2026-12-03T17:05:30Z); Unix ms. Empty: the beginning.
Result<int64_t> ParseSince(const std::string& text, int64_t now_ms) {
  if (text.empty()) return int64_t{0};
  if (text.size() > 32) return Status::InvalidArgument("--since is too long; e.g. --since 2h or --since 2026-12-03");
  static const std::regex span(R"(^([0-9]{1,9})([smhd])$)");
  static const std::regex date(
      R"(^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?)?Z?$)");
  std::smatch m;
  if (std::regex_match(text, m, span)) {
    const int64_t n = std::stoll(m[1]);
    const int64_t unit = m[2] == "s" ? 1000 : m[2] == "m" ? 60000 : m[2] == "h" ? 3600000 : 86400000;
    return std::max<int64_t>(0, now_ms - n * unit);
  }
  if (std::regex_match(text, m, date)) {
    std::tm tm{};
    tm.tm_year = std::stoi(m[1]) - 1900;
    tm.tm_mon = std::stoi(m[2]) - 1;
    tm.tm_mday = std::stoi(m[3]);
    tm.tm_hour = m[4].matched ? std::stoi(m[4]) : 0;
    tm.tm_min = m[5].matched ? std::stoi(m[5]) : 0;
    tm.tm_sec = m[6].matched ? std::stoi(m[6]) : 0;
    if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60) {
      return Status::InvalidArgument("--since '" + text + "' is not a valid date and time");
    }
    return static_cast<int64_t>(timegm(&tm)) * 1000;
  }
  return Status::InvalidArgument("--since '" + text +
                                 "' is neither a span (30s, 90m, 2h, 7d) nor a UTC time "
                                 "(2026-12-03 or 2026-12-03T17:05:00Z)");
}

std::string AuditUtcTime(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

struct AuditArgs {
  std::string since;
  std::string format = "table";
};

int RunAudit(const CliContext& ctx, const AuditArgs& args) {
  Result<int64_t> since = ParseSince(args.since, AuditNowMs());
  if (!since.ok()) return ctx.Fail(since.status());
  auto source = ctx.OpenSource();
  if (!source.ok()) return ctx.Fail(source.status());
  auto entries = (*source)->ListAudit(*since);
  if (!entries.ok()) return ctx.Fail(entries.status());
  if (args.format == "json" || ctx.json()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : *entries) {
      out.push_back({{"seq", e.seq}, {"time", AuditUtcTime(e.time_ms)}, {"time_unix_ms", e.time_ms},
                     {"caller", e.caller}, {"role", e.role}, {"action", e.action}, {"target", e.target},
                     {"outcome", e.outcome}});
    }
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  if (entries->empty()) {
    std::cout << "no audit entries" << (args.since.empty() ? "" : " since " + args.since)
              << "; submits, cancels, retries and worker registrations appear here\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : *entries) {
    rows.push_back({AuditUtcTime(e.time_ms), e.caller, e.role, e.action, e.target, e.outcome});
  }
  std::cout << RenderPlainTable({"Time (UTC)", "Caller", "Role", "Action", "Target", "Outcome"}, rows);
  return kExitOk;
}

}  // namespace

void AddAuditCommand(CLI::App& app, CliContext& ctx) {
  auto args = std::make_shared<AuditArgs>();
  CLI::App* cmd = app.add_subcommand(
      "audit", "who submitted, cancelled, retried or registered, when, and how it ended (admin token)");
  cmd->add_option("--since", args->since, "from this long ago (30s, 90m, 2h, 7d) or this UTC time (2026-12-03T17:05Z)");
  cmd->add_option("--format", args->format, "table or json")->check(CLI::IsMember({"table", "json"}))->capture_default_str();
  cmd->callback([&ctx, args] { ctx.exit_code = RunAudit(ctx, *args); });
}

}  // namespace sweepd::client
