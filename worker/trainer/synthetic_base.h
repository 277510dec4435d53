// The synthetic benchmark's base model: a small Llama pre-trained by sweep-train itself on
// the synthetic skills and cached on disk, so that every job of a sweep starts from the
// same weights and only the first one pays for pre-training.
#pragma once

#include <functional>
#include <string>

#include <torch/torch.h>

#include "worker/models/llama.h"

namespace sweepd::trainer {

// Whether a model source names a built-in synthetic model ("synthetic:NAME").
bool IsSyntheticModel(const std::string& source);

// Where cached base models live: `flag` if given, else $SWEEPD_CACHE, else
// $XDG_CACHE_HOME/sweepd, else $HOME/.cache/sweepd (absolute, so every job's workdir agrees).
std::string ResolveCacheDir(const std::string& flag);

// The pre-trained model "synthetic:<name>" from `cache_dir`, pre-training it first if the
// cache lacks it. A file lock makes concurrent jobs wait for one pre-training instead of
// racing. `log` receives progress lines (stderr). `fingerprint` (optional) receives 16 hex
// digits of a hash of the weights file: two machines whose LibTorch builds round differently
// pre-train different models, and the fingerprint tells them apart.
models::LlamaForCausalLM LoadSyntheticBase(const std::string& source, const std::string& cache_dir,
                                           const std::function<void(const std::string&)>& log,
                                           std::string* fingerprint = nullptr);

}  // namespace sweepd::trainer
