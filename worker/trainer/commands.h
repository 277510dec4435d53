// The subcommands of sweep-train. Each Add*Command registers one subcommand on `app`;
// its callback stores the process's exit status in *exit_code (0 success, 1 a check
// failed, 2 bad input). Torch-free so that main.cc compiles fast.
#pragma once

namespace CLI {
class App;
}

namespace sweepd::trainer {

void AddRunCommand(CLI::App& app, int* exit_code);          // worker/trainer/run_command.cc
void AddPrepareCommand(CLI::App& app, int* exit_code);      // worker/trainer/run_command.cc
void AddProbeCommand(CLI::App& app, int* exit_code);        // worker/trainer/probe_command.cc
void AddConformanceCommand(CLI::App& app, int* exit_code);  // worker/trainer/conformance_command.cc
void AddBudgetCommand(CLI::App& app, int* exit_code);       // worker/trainer/budget_command.cc
void AddBenchCommand(CLI::App& app, int* exit_code);        // worker/trainer/bench_command.cc
void AddEvalCommand(CLI::App& app, int* exit_code);         // worker/trainer/eval_command.cc
void AddTokenizerBenchCommand(CLI::App& app, int* exit_code);  // worker/trainer/tokenizer_bench_command.cc
void AddMergeCommand(CLI::App& app, int* exit_code);        // worker/trainer/merge_command.cc

// Reads the environment variables sweep-train honours (SWEEPD_FUSED_KERNELS) and throws
// std::invalid_argument naming one with a value it does not accept (worker/trainer/probe_command.cc).
void CheckEnvironment();

}  // namespace sweepd::trainer
