// Log-likelihood of continuations as lm-evaluation-harness computes it
// (HFLM._encode_pair and _loglikelihood_tokens): trailing whitespace of the context moves to
// the continuation, the continuation's tokens are those of encode(context + continuation)
// after encode(context), and the model reads (context + continuation)[:-1].
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "worker/data/tokenizer.h"
#include "worker/models/llama.h"

namespace sweepd::eval {

struct LoglikRequest {
  std::string context;
  std::string continuation;
};

// The token split of one request.
struct EncodedRequest {
  std::vector<int64_t> context;       // with BOS first when add_bos (or BOS alone for an empty context)
  std::vector<int64_t> continuation;
};

EncodedRequest EncodeRequest(const data::Tokenizer& tokenizer, const LoglikRequest& request, bool add_bos);

// Sum of the continuation tokens' log-probabilities for each request, in float64 on the
// host, in padded batches of at most `max_batch_tokens` tokens, longest first. With
// `share_contexts`, a context that several multi-token continuations follow runs once and
// the continuations run on its keys and values (KV cache); otherwise every request is one
// whole row. Either way, rows whose model input is the same (choices of one token after one
// context) share one row. The model must be in eval mode under NoGradGuard.
std::vector<double> Loglikelihoods(models::LlamaForCausalLM& model, const data::Tokenizer& tokenizer,
                                   const std::vector<LoglikRequest>& requests, bool add_bos,
                                   const torch::Device& device, int64_t max_batch_tokens,
                                   bool share_contexts = true);

}  // namespace sweepd::eval
