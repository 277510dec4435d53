// sweep-train: runs one job (run), pre-trains synthetic base models into the cache
// (prepare), checks adapters and models against reference files (conformance), prints
// matched parameter budgets (budget), lists devices (probe), times training steps on a
// random-weight model (bench), runs the tasks of an eval folder (eval), times tokenizers
// (tokenizer-bench), merges an adapter into a model folder (merge).
// `run` and `prepare` classify their own failures (worker/trainer/failure_exit.h); an exception
// of another subcommand ends here as a one-line message and exit status 2.
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "common/version.h"
#include "worker/trainer/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"sweep-train: the sweepd trainer (LibTorch)"};
  app.set_version_flag("--version", std::string("sweep-train ") + SWEEPD_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  sweepd::trainer::AddRunCommand(app, &exit_code);
  sweepd::trainer::AddPrepareCommand(app, &exit_code);
  sweepd::trainer::AddProbeCommand(app, &exit_code);
  sweepd::trainer::AddConformanceCommand(app, &exit_code);
  sweepd::trainer::AddBudgetCommand(app, &exit_code);
  sweepd::trainer::AddBenchCommand(app, &exit_code);
  sweepd::trainer::AddEvalCommand(app, &exit_code);
  sweepd::trainer::AddTokenizerBenchCommand(app, &exit_code);
  sweepd::trainer::AddMergeCommand(app, &exit_code);
  try {
    sweepd::trainer::CheckEnvironment();
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "sweep-train: " << e.what() << "\n";
    return 2;
  }
  return exit_code;
}
