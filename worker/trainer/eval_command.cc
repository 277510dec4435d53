// `sweep-train eval DIR`: runs the tasks of an eval folder (eval_folder.h) on a device and
// dtype of choice and writes every item's result in reference.json's format, with the
// seconds and items per second of each task, so that another implementation's results on
// the same folder can be compared item by item (bench/gpu/eval_bench.py does).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/contracts.h"
#include "worker/data/tokenizer.h"
#include "worker/eval/eval_tasks.h"
#include "worker/eval/scoring.h"
#include "worker/models/hf_checkpoint.h"
#include "worker/trainer/commands.h"
#include "worker/trainer/eval_folder.h"

namespace sweepd::trainer {
namespace {

using nlohmann::json;

struct EvalArgs {
  std::string dir;
  std::string device = "cpu";
  std::string dtype = "float32";
  std::string tokenizer;  // "byte", a .model file, or empty: the folder's
  std::string out;
  int64_t batch_tokens = 8192;
  int64_t generation_batch = 16;
  bool no_kv_cache = false;
};

torch::ScalarType EvalDtype(const std::string& name) {
  if (name == "float64") return torch::kFloat64;
  return models::ParseDtype(name);
}

int RunEval(const EvalArgs& a) {
  const EvalFolder folder = ReadEvalFolder(a.dir);
  std::unique_ptr<data::Tokenizer> tokenizer;
  if (a.tokenizer == "byte") {
    tokenizer = std::make_unique<data::ByteTokenizer>();
  } else {
    const std::string path = a.tokenizer.empty() ? folder.tokenizer : a.tokenizer;
    if (path.empty()) throw std::invalid_argument(a.dir + ": no tokenizer.model; pass --tokenizer FILE or --tokenizer byte");
    tokenizer = data::LoadSentencePieceTokenizer(path);
  }
  const torch::Device device(a.device);
  const auto dtype = EvalDtype(a.dtype);
  auto model = models::LoadHfModel(a.dir + "/model", dtype == torch::kFloat64 ? torch::kFloat32 : dtype);
  model->to(device, dtype);
  eval::ScoringOptions options;
  options.max_batch_tokens = a.batch_tokens;
  options.generation_batch = a.generation_batch;
  options.kv_cache = !a.no_kv_cache;
  json out = {{"made_by", "sweep-train eval"}, {"device", a.device}, {"dtype", a.dtype}, {"kv_cache", options.kv_cache},
              {"tasks", json::object()}};
  for (const auto& [name, spec] : folder.tasks) {
    const eval::EvalTask task = eval::LoadEvalTask(spec);
    const auto start = std::chrono::steady_clock::now();
    const eval::TaskResult result = eval::ScoreTask(model, *tokenizer, task, device, options);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    json r = TaskResultJson(task, result);
    r["seconds"] = seconds;
    r["items_per_s"] = seconds > 0 ? static_cast<double>(result.n) / seconds : 0.0;
    std::cerr << "sweep-train eval: " << name << ": " << result.n << " items in " << seconds << " s, "
              << result.score_name << " " << result.score << "\n";
    out["tasks"][name] = r;
  }
  if (a.out.empty()) {
    std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    // Generations may hold bytes that are not UTF-8 (byte tokens); JSON gets U+FFFD for them.
    std::ofstream(a.out) << out.dump(1, ' ', false, json::error_handler_t::replace) << "\n";
  }
  return exit_status::kOk;
}

}  // namespace

void AddEvalCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Run the tasks of an eval folder (the format of tests/fixtures/eval/tiny-llama-lmeval) and write "
              "every item's result as JSON, with items per second");
  cmd->add_option("DIR", args->dir, "eval folder: model/, task files, reference.json (settings)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--device", args->device, "cpu or cuda[:N]");
  cmd->add_option("--dtype", args->dtype, "float32, bfloat16, float16 or float64");
  cmd->add_option("--tokenizer", args->tokenizer, "a SentencePiece .model, or 'byte' (bytes are ids 0-255); "
                                                  "default: the folder's tokenizer.model");
  cmd->add_option("--out", args->out, "write the JSON here instead of stdout");
  cmd->add_option("--batch-tokens", args->batch_tokens, "multiple choice: tokens per padded forward");
  cmd->add_option("--generation-batch", args->generation_batch, "prompts decoded together");
  cmd->add_flag("--no-kv-cache", args->no_kv_cache, "recompute the whole sequence for every new token");
  cmd->callback([args, exit_code] {
    try {
      *exit_code = RunEval(*args);
    } catch (const std::exception& e) {
      const std::string what = e.what();
      std::cerr << "sweep-train eval: " << what.substr(0, what.find('\n')) << "\n";
      *exit_code = exit_status::kInvalid;
    }
  });
}

}  // namespace sweepd::trainer
