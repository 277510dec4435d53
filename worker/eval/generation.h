// Greedy generation as lm-evaluation-harness runs it (HFLM.generate_until): at most
// max_gen_toks new tokens, a row ends at EOS or once its decoded text contains a stop
// string, and the text is cut at the first stop string.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "worker/data/tokenizer.h"
#include "worker/models/llama.h"

namespace sweepd::eval {

struct GenerationSettings {
  bool add_bos = false;
  int64_t max_gen_toks = 256;
  std::vector<std::string> until;
  int64_t batch_size = 16;  // prompts decoded together
  bool kv_cache = true;     // false: every token recomputes the whole sequence, one prompt at a time
};

struct Generation {
  std::vector<int64_t> ids;  // the new tokens, EOS included when it ended the row
  std::string text;          // decoded (without EOS) and cut at the first stop string
};

// Batched greedy decoding with a KV cache: prompts left-padded, positions counted from each
// row's first real token, padding masked out. The model must be in eval mode under
// NoGradGuard.
std::vector<Generation> GreedyGenerate(models::LlamaForCausalLM& model, const data::Tokenizer& tokenizer,
                                       const std::vector<std::string>& prompts, const GenerationSettings& settings,
                                       const torch::Device& device);

}  // namespace sweepd::eval
