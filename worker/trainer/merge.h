// Folding an adapter folder into a Hugging Face model folder (worker/trainer/merge_command.cc),
// for `sweep-train merge` and for sweepd's merge jobs (worker/trainer/job_runner.cc).
#pragma once

#include <cstdint>
#include <string>

namespace sweepd::trainer {

struct MergeArgs {
  std::string model;    // the base model folder
  std::string adapter;  // PEFT's layout or sweep-train's own
  std::string out;      // must not exist or be empty; written beside it and renamed at the end
  std::string dtype;    // empty: the base config's dtype
  std::string max_shard_size = "5GB";
  std::string compute_dtype = "float32";
};

struct MergeResult {
  std::string folder;  // the merged model folder
  std::string method;
  std::string dtype;
  int64_t layers = 0;        // adapted layers folded in
  int64_t files = 0;         // files written (weights, index, config, tokenizer files)
  int64_t total_params = 0;  // parameters of the merged model
};

// Throws InvalidInput (worker/failures.h) naming the folder, file or tensor for bad input.
MergeResult MergeAdapter(const MergeArgs& args);

}  // namespace sweepd::trainer
