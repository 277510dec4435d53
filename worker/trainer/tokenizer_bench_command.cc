// `sweep-train tokenizer-bench`: encoding speed of one tokenizer file over the string fields
// of a JSON Lines file, single thread, for bench/gpu/tokenizer_bench.sh (set against Hugging
// Face tokenizers on the same rows). Reading and parsing the file are not timed; only the
// Encode calls are. Prints one JSON line: megabytes, seconds, MB/s, tokens.
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "worker/data/jsonl.h"
#include "worker/data/tokenizer.h"
#include "worker/trainer/commands.h"

namespace sweepd::trainer {
namespace {

struct TokenizerBenchOptions {
  std::string tokenizer;
  std::string data;
  int repeat = 1;
};

int RunTokenizerBench(const TokenizerBenchOptions& o) {
  const auto load_start = std::chrono::steady_clock::now();
  auto tokenizer = data::LoadTokenizerFile(o.tokenizer);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  std::vector<std::string> texts;
  size_t bytes = 0;
  data::ForEachJsonLine(o.data, [&](const nlohmann::json& row, int64_t) {
    for (const auto& [key, value] : row.items()) {
      if (!value.is_string()) continue;
      texts.push_back(value.get<std::string>());
      bytes += texts.back().size();
    }
  });
  double best = 0;
  int64_t tokens = 0;
  for (int r = 0; r < o.repeat; ++r) {
    tokens = 0;
    const auto start = std::chrono::steady_clock::now();
    for (const auto& t : texts) tokens += static_cast<int64_t>(tokenizer->Encode(t).size());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r == 0 || s < best) best = s;
  }
  const double mb = static_cast<double>(bytes) / 1e6;
  std::cout << nlohmann::json{{"impl", "sweep_train"}, {"tokenizer", o.tokenizer}, {"texts", texts.size()},
                              {"mb", mb}, {"seconds", best}, {"mb_per_s", mb / best}, {"tokens", tokens},
                              {"load_seconds", load_s}, {"threads", 1}}
                   .dump()
            << "\n";
  return 0;
}

}  // namespace

void AddTokenizerBenchCommand(CLI::App& app, int* exit_code) {
  auto options = std::make_shared<TokenizerBenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tokenizer-bench", "Time encoding the string fields of a JSONL file, one thread; prints one JSON line");
  cmd->add_option("--tokenizer", options->tokenizer, "tokenizer.json, a SentencePiece .model, or a model folder")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--data", options->data, "JSON Lines file; every string field of every row is encoded")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--repeat", options->repeat, "passes over the data; the fastest is reported")->check(CLI::PositiveNumber);
  cmd->callback([options, exit_code] { *exit_code = RunTokenizerBench(*options); });
}

}  // namespace sweepd::trainer
