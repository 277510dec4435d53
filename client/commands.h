// The sweepctl subcommands. Each Add*Command registers one or more subcommands on `app`;
// their callbacks run the command and leave its exit status in ctx.exit_code.
#pragma once

#include <CLI/CLI.hpp>

#include "client/cli_context.h"

namespace sweepd::client {

void AddSubmitCommands(CLI::App& app, CliContext& ctx);   // submit, validate
void AddSweepCommands(CLI::App& app, CliContext& ctx);    // list, status, cancel, retry
void AddWatchCommand(CLI::App& app, CliContext& ctx);     // watch
void AddLogsCommand(CLI::App& app, CliContext& ctx);      // logs
void AddWorkersCommand(CLI::App& app, CliContext& ctx);   // workers
void AddResultsCommands(CLI::App& app, CliContext& ctx);  // results, export
void AddPlotCommand(CLI::App& app, CliContext& ctx);      // plot
void AddAuthCommand(CLI::App& app, CliContext& ctx);      // auth new-token
void AddAuditCommand(CLI::App& app, CliContext& ctx);     // audit

}  // namespace sweepd::client
