// Greedy decoding (see generation.h). Left padding as transformers' generate does it: a
// row's real tokens sit at the end of the prompt block so that every row's next token is
// at the same column; padded keys are masked and each padding query sees itself only, so
// that no row of the softmax is empty.
#include "worker/eval/generation.h"

#include <algorithm>
#include <numeric>

namespace sweepd::eval {
namespace {

std::vector<int64_t> PromptIds(const data::Tokenizer& tokenizer, const std::string& prompt, bool add_bos) {
  std::vector<int64_t> ids;
  if (add_bos || prompt.empty()) ids.push_back(tokenizer.Bos());
  const auto text = tokenizer.Encode(prompt);
  ids.insert(ids.end(), text.begin(), text.end());
  return ids;
}

// Decoded text of the new tokens (EOS left out) and whether it contains a stop string.
std::string DecodeNew(const data::Tokenizer& tokenizer, const std::vector<int64_t>& ids) {
  std::vector<int64_t> text_ids = ids;
  if (!text_ids.empty() && text_ids.back() == tokenizer.Eos()) text_ids.pop_back();
  return tokenizer.Decode(text_ids);
}

bool HasStop(const std::string& text, const std::vector<std::string>& until) {
  return std::any_of(until.begin(), until.end(), [&](const std::string& s) { return text.find(s) != std::string::npos; });
}

std::string CutAtStops(std::string text, const std::vector<std::string>& until) {
  for (const std::string& s : until) {
    const auto at = text.find(s);
    if (at != std::string::npos) text.resize(at);
  }
  return text;
}

// Appends `next` to a row; true when the row has ended.
bool Advance(const data::Tokenizer& tokenizer, const GenerationSettings& settings, int64_t next, Generation& g) {
  g.ids.push_back(next);
  if (next == tokenizer.Eos()) return true;
  return HasStop(DecodeNew(tokenizer, g.ids), settings.until);
}

// The plain way, for checking the fast one: one prompt, the whole sequence every token.
Generation GenerateUncached(models::LlamaForCausalLM& model, const data::Tokenizer& tokenizer,
                            const std::vector<int64_t>& prompt, const GenerationSettings& settings,
                            const torch::Device& device) {
  Generation g;
  std::vector<int64_t> ids = prompt;
  for (int64_t step = 0; step < settings.max_gen_toks; ++step) {
    auto logits = model->forward(torch::tensor(ids, torch::kInt64).unsqueeze(0).to(device));
    const int64_t next = logits[0][-1].argmax().item<int64_t>();
    ids.push_back(next);
    if (Advance(tokenizer, settings, next, g)) break;
  }
  return g;
}

std::vector<Generation> GenerateBatch(models::LlamaForCausalLM& model, const data::Tokenizer& tokenizer,
                                      const std::vector<std::vector<int64_t>>& prompts,
                                      const GenerationSettings& settings, const torch::Device& device) {
  const auto b = static_cast<int64_t>(prompts.size());
  int64_t width = 0;
  for (const auto& p : prompts) width = std::max<int64_t>(width, static_cast<int64_t>(p.size()));
  auto ids = torch::full({b, width}, tokenizer.Eos(), torch::kInt64);
  auto real = torch::zeros({b, width}, torch::kBool);
  for (int64_t i = 0; i < b; ++i) {
    const auto n = static_cast<int64_t>(prompts[i].size());
    ids[i].narrow(0, width - n, n).copy_(torch::tensor(prompts[i], torch::kInt64));
    real[i].narrow(0, width - n, n).fill_(true);
  }
  auto options = torch::TensorOptions().device(device);
  real = real.to(device);
  auto positions = (real.to(torch::kInt64).cumsum(1) - 1).clamp_min(0);
  const auto col = torch::arange(width, options.dtype(torch::kInt64));
  auto causal = col.unsqueeze(1) >= col.unsqueeze(0);  // [T, T]
  auto mask = causal.unsqueeze(0).logical_and(real.unsqueeze(1));  // [B, T, T]
  mask = mask.logical_or(torch::eye(width, options.dtype(torch::kBool)).unsqueeze(0));
  const auto window = model->config().sliding_window;
  if (window > 0) {
    auto distance = positions.unsqueeze(2) - positions.unsqueeze(1);  // query - key, per row
    mask = mask.logical_and(distance < window);
  }
  models::KvCache cache;
  cache.capacity = width + settings.max_gen_toks;
  auto logits = model->ForwardCached(ids.to(device), positions, mask.unsqueeze(1), cache, /*last_only=*/true);
  auto next = logits.select(1, 0).argmax(-1);
  auto last_position = positions.select(1, width - 1);
  auto key_real = real;
  auto key_position = positions;

  std::vector<Generation> out(static_cast<size_t>(b));
  std::vector<bool> done(static_cast<size_t>(b), false);
  for (int64_t step = 0; step < settings.max_gen_toks; ++step) {
    const auto host = next.to(torch::kCPU);
    bool all = true;
    for (int64_t i = 0; i < b; ++i) {
      if (!done[i]) done[i] = Advance(tokenizer, settings, host[i].item<int64_t>(), out[i]);
      all = all && done[i];
    }
    if (all || step + 1 == settings.max_gen_toks) break;
    last_position = last_position + 1;
    key_real = torch::cat({key_real, torch::ones({b, 1}, options.dtype(torch::kBool))}, 1);
    key_position = torch::cat({key_position, last_position.unsqueeze(1)}, 1);
    auto step_mask = key_real;
    if (window > 0) step_mask = step_mask.logical_and(last_position.unsqueeze(1) - key_position < window);
    logits = model->ForwardCached(next.unsqueeze(1), last_position.unsqueeze(1), step_mask.unsqueeze(1).unsqueeze(1),
                                  cache);
    next = logits.select(1, 0).argmax(-1);
  }
  return out;
}

}  // namespace

std::vector<Generation> GreedyGenerate(models::LlamaForCausalLM& model, const data::Tokenizer& tokenizer,
                                       const std::vector<std::string>& prompts, const GenerationSettings& settings,
                                       const torch::Device& device) {
  std::vector<std::vector<int64_t>> encoded;
  for (const auto& p : prompts) encoded.push_back(PromptIds(tokenizer, p, settings.add_bos));
  std::vector<Generation> out(prompts.size());
  if (!settings.kv_cache) {
    for (size_t i = 0; i < prompts.size(); ++i) out[i] = GenerateUncached(model, tokenizer, encoded[i], settings, device);
  } else {
    // Longest first, so that a batch holds prompts of similar length (little padding).
    std::vector<size_t> order(prompts.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return encoded[a].size() > encoded[b].size(); });
    const auto batch = static_cast<size_t>(std::max<int64_t>(1, settings.batch_size));
    for (size_t b0 = 0; b0 < order.size(); b0 += batch) {
      std::vector<std::vector<int64_t>> group;
      for (size_t i = b0; i < std::min(order.size(), b0 + batch); ++i) group.push_back(encoded[order[i]]);
      auto generated = GenerateBatch(model, tokenizer, group, settings, device);
      for (size_t i = 0; i < generated.size(); ++i) out[order[b0 + i]] = std::move(generated[i]);
    }
  }
  for (auto& g : out) g.text = CutAtStops(DecodeNew(tokenizer, g.ids), settings.until);
  return out;
}

}  // namespace sweepd::eval
