// sweepctl: the researcher's command line for sweepd. Submits and validates sweep specs,
// follows progress, and prints or exports result tables, against a coordinator or
// offline on a database file. Exit statuses: client/exit_codes.h, docs/sweepctl.md.
#include <iostream>

#include <CLI/CLI.hpp>

#include "client/commands.h"
#include "client/exit_codes.h"
#include "common/version.h"

int main(int argc, char** argv) {
  using namespace sweepd::client;
  CliContext ctx;
  CLI::App app{
      "sweepctl: submit PEFT sweeps to sweepd, follow them, and print their result tables.\n"
      "Talks to a coordinator (--coordinator, $SWEEPD_ADDR, default 127.0.0.1:50051), or reads\n"
      "a database file with no server (--db var/sweepd.db).",
      "sweepctl"};
  app.set_version_flag("--version", std::string("sweepctl ") + SWEEPD_VERSION);
  app.option_defaults()->always_capture_default();
  app.add_option("--coordinator", ctx.coordinator,
                 "sweepd address HOST:PORT (default $SWEEPD_ADDR, then 127.0.0.1:50051)");
  app.add_option("--db", ctx.db, "read this sweepd database file instead (read-only, no server)");
  app.add_option("--token-file", ctx.token_file,
                 "file holding the token sweepd's --auth-file knows (default $SWEEPD_TOKEN_FILE)");
  app.add_option("--tls-ca", ctx.tls_ca, "verify sweepd's TLS certificate with this CA (default $SWEEPD_TLS_CA)");
  app.add_option("--output", ctx.output, "text for people, json for scripts")
      ->check(CLI::IsMember({"text", "json"}));
  app.require_subcommand(1);
  app.footer("Exit status: 0 ok, 1 failure, 2 bad arguments, 3 invalid spec, 4 coordinator or\n"
             "database unavailable, 5 not found, 6 sweep ended with failed jobs (watch),\n"
             "7 refused (also: no valid token, or a role that may not). See docs/sweepctl.md.");

  AddSubmitCommands(app, ctx);
  AddSweepCommands(app, ctx);
  AddWatchCommand(app, ctx);
  AddLogsCommand(app, ctx);
  AddWorkersCommand(app, ctx);
  AddAuditCommand(app, ctx);
  AddResultsCommands(app, ctx);
  AddPlotCommand(app, ctx);
  AddAuthCommand(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  return ctx.exit_code;
}
