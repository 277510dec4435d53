// Batched continuation scoring (see loglikelihood.h). Right padding: with causal attention a
// row's real positions never see its padding, so one padded forward gives every row's
// log-probabilities exactly as its own forward would (up to the summation order of the
// matrix products).
#include "worker/eval/loglikelihood.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <numeric>

namespace sweepd::eval {

EncodedRequest EncodeRequest(const data::Tokenizer& tokenizer, const LoglikRequest& request, bool add_bos) {
  std::string context = request.context;
  std::string continuation = request.continuation;
  size_t keep = context.size();
  while (keep > 0 && std::isspace(static_cast<unsigned char>(context[keep - 1]))) --keep;
  continuation = context.substr(keep) + continuation;
  context.resize(keep);
  EncodedRequest out;
  if (add_bos || context.empty()) out.context.push_back(tokenizer.Bos());
  if (context.empty()) {
    out.continuation = tokenizer.Encode(continuation);
    return out;
  }
  const std::vector<int64_t> whole = tokenizer.Encode(context + continuation);
  const std::vector<int64_t> ctx = tokenizer.Encode(context);
  out.context.insert(out.context.end(), ctx.begin(), ctx.end());
  out.continuation.assign(whole.begin() + static_cast<std::ptrdiff_t>(std::min(ctx.size(), whole.size())), whole.end());
  return out;
}

namespace {

// Scores `subset` of the requests row by row: each row is the whole (context +
// continuation)[:-1], rows with the same input shared.
void ScoreWholeRows(models::LlamaForCausalLM& model, const std::vector<EncodedRequest>& encoded,
                    const std::vector<size_t>& subset, const torch::Device& device, int64_t max_batch_tokens,
                    std::vector<double>& out) {
  // One model input per distinct (context + continuation)[:-1]; each request reads its
  // continuation's log-probabilities from the last positions of its row.
  struct Row {
    std::vector<int64_t> input;
    std::vector<size_t> requests;
  };
  std::vector<Row> rows;
  std::map<std::vector<int64_t>, size_t> row_of;
  for (size_t i : subset) {
    std::vector<int64_t> input = encoded[i].context;
    input.insert(input.end(), encoded[i].continuation.begin(), encoded[i].continuation.end());
    input.pop_back();
    auto [it, fresh] = row_of.emplace(input, rows.size());
    if (fresh) rows.push_back({std::move(input), {}});
    rows[it->second].requests.push_back(i);
  }
  std::vector<size_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return rows[a].input.size() > rows[b].input.size(); });

  for (size_t b0 = 0; b0 < order.size();) {
    const int64_t longest = static_cast<int64_t>(rows[order[b0]].input.size());
    const size_t fit = static_cast<size_t>(std::max<int64_t>(1, max_batch_tokens / std::max<int64_t>(1, longest)));
    const size_t n = std::min(fit, order.size() - b0);
    auto ids = torch::zeros({static_cast<int64_t>(n), longest}, torch::kInt64);
    auto next = torch::zeros({static_cast<int64_t>(n), longest}, torch::kInt64);  // the token each position predicts
    std::vector<int64_t> last_position;
    for (size_t i = 0; i < n; ++i) {
      const auto& input = rows[order[b0 + i]].input;
      const auto length = static_cast<int64_t>(input.size());
      const auto row = torch::tensor(input, torch::kInt64);
      ids[static_cast<int64_t>(i)].narrow(0, 0, length).copy_(row);
      if (length > 1) next[static_cast<int64_t>(i)].narrow(0, 0, length - 1).copy_(row.narrow(0, 1, length - 1));
      last_position.push_back(length - 1);
    }
    auto logits = model->forward(ids.to(device));
    if (logits.scalar_type() != torch::kFloat64) logits = logits.to(torch::kFloat32);
    const auto logp = torch::log_softmax(logits, -1);
    // Only what the requests read comes back to the host: the log-probability of each
    // position's next input token, and the whole distribution at each row's last position
    // (where the requests sharing a row differ).
    const auto picked = logp.gather(2, next.to(device).unsqueeze(-1)).squeeze(-1).to(torch::kCPU, torch::kFloat64);
    const auto last = logp.index({torch::arange(static_cast<int64_t>(n), torch::TensorOptions().device(device)),
                                  torch::tensor(last_position, torch::kInt64).to(device)})
                          .to(torch::kCPU, torch::kFloat64);
    const auto pa = picked.accessor<double, 2>();
    const auto la = last.accessor<double, 2>();
    for (size_t i = 0; i < n; ++i) {
      const Row& row = rows[order[b0 + i]];
      const int64_t length = static_cast<int64_t>(row.input.size());
      const auto bi = static_cast<int64_t>(i);
      for (size_t r : row.requests) {
        const auto& cont = encoded[r].continuation;
        if (cont.empty()) continue;
        const int64_t first = length - static_cast<int64_t>(cont.size());  // the position predicting cont[0]
        double total = la[bi][cont.back()];
        for (size_t k = 0; k + 1 < cont.size(); ++k) total += pa[bi][first + static_cast<int64_t>(k)];
        out[r] = total;
      }
    }
    b0 += n;
  }
}


// Scores requests that share contexts: each distinct context runs once (a batch of contexts,
// right-padded), its keys and values are copied to one cache row per continuation, and the
// continuations run together on top of them. Continuations of one token need no second pass.
void ScoreSharedContexts(models::LlamaForCausalLM& model, const std::vector<EncodedRequest>& encoded,
                         const std::vector<std::vector<size_t>>& groups, const torch::Device& device,
                         int64_t max_batch_tokens, std::vector<double>& out) {
  const auto long_opts = torch::TensorOptions().dtype(torch::kInt64);
  for (size_t g0 = 0; g0 < groups.size();) {
    // Groups come longest context first; a batch holds as many as fit in the token budget.
    const auto width = static_cast<int64_t>(encoded[groups[g0][0]].context.size());
    const size_t fit = static_cast<size_t>(std::max<int64_t>(1, max_batch_tokens / std::max<int64_t>(1, width)));
    const size_t m = std::min(fit, groups.size() - g0);
    auto ids = torch::zeros({static_cast<int64_t>(m), width}, long_opts);
    std::vector<int64_t> lengths;
    for (size_t i = 0; i < m; ++i) {
      const auto& ctx = encoded[groups[g0 + i][0]].context;
      lengths.push_back(static_cast<int64_t>(ctx.size()));
      ids[static_cast<int64_t>(i)].narrow(0, 0, lengths.back()).copy_(torch::tensor(ctx, torch::kInt64));
    }
    const auto length = torch::tensor(lengths, long_opts).to(device);
    const auto col = torch::arange(width, long_opts.device(device));
    auto mask = (col.unsqueeze(1) >= col.unsqueeze(0)).unsqueeze(0).logical_and(
        (col.unsqueeze(0) < length.unsqueeze(1)).unsqueeze(1));  // [m, T, T]: causal, real keys
    mask = mask.logical_or(torch::eye(width, long_opts.dtype(torch::kBool).device(device)).unsqueeze(0));
    const auto positions = col.unsqueeze(0).expand({static_cast<int64_t>(m), width});
    models::KvCache cache;
    auto logits = model->ForwardCached(ids.to(device), positions, mask.unsqueeze(1), cache);
    if (logits.scalar_type() != torch::kFloat64) logits = logits.to(torch::kFloat32);
    // The distribution after each context: it scores every continuation's first token.
    const auto first = torch::log_softmax(logits.index({torch::arange(static_cast<int64_t>(m), long_opts.device(device)), length - 1}), -1)
                           .to(torch::kCPU, torch::kFloat64);
    const auto fa = first.accessor<double, 2>();
    std::vector<size_t> longer;  // requests with more than one continuation token
    std::vector<int64_t> group_of;
    int64_t steps = 0;
    for (size_t i = 0; i < m; ++i) {
      for (size_t r : groups[g0 + i]) {
        const auto& cont = encoded[r].continuation;
        if (cont.empty()) continue;
        out[r] = fa[static_cast<int64_t>(i)][cont[0]];
        if (cont.size() < 2) continue;
        longer.push_back(r);
        group_of.push_back(static_cast<int64_t>(i));
        steps = std::max<int64_t>(steps, static_cast<int64_t>(cont.size()) - 1);
      }
    }
    g0 += m;
    if (longer.empty()) continue;
    const auto rows = static_cast<int64_t>(longer.size());
    const auto row_group = torch::tensor(group_of, long_opts).to(device);
    for (auto& layer : cache.layers) {
      layer.keys = layer.keys.narrow(2, 0, layer.length).index_select(0, row_group);
      layer.values = layer.values.narrow(2, 0, layer.length).index_select(0, row_group);
    }
    auto cont_ids = torch::zeros({rows, steps}, long_opts);
    auto next = torch::zeros({rows, steps}, long_opts);
    for (int64_t k = 0; k < rows; ++k) {
      const auto& cont = encoded[longer[static_cast<size_t>(k)]].continuation;
      const auto n = static_cast<int64_t>(cont.size()) - 1;
      const auto row = torch::tensor(cont, torch::kInt64);
      cont_ids[k].narrow(0, 0, n).copy_(row.narrow(0, 0, n));
      next[k].narrow(0, 0, n).copy_(row.narrow(0, 1, n));
    }
    const auto own_length = length.index_select(0, row_group);  // [rows]
    const auto step_col = torch::arange(steps, long_opts.device(device));
    const auto key_col = torch::arange(width + steps, long_opts.device(device));
    // Keys: the row's own context (not its padding), then the continuation up to the query.
    auto cont_mask = (key_col.view({1, 1, -1}) < own_length.view({-1, 1, 1}))
                         .logical_or((key_col.view({1, 1, -1}) >= width)
                                         .logical_and(key_col.view({1, 1, -1}) - width <= step_col.view({1, -1, 1})));
    const auto cont_positions = own_length.unsqueeze(1) + step_col.unsqueeze(0);
    auto cont_logits = model->ForwardCached(cont_ids.to(device), cont_positions, cont_mask.unsqueeze(1), cache);
    if (cont_logits.scalar_type() != torch::kFloat64) cont_logits = cont_logits.to(torch::kFloat32);
    const auto picked = torch::log_softmax(cont_logits, -1).gather(2, next.to(device).unsqueeze(-1)).squeeze(-1)
                            .to(torch::kCPU, torch::kFloat64);
    const auto pa = picked.accessor<double, 2>();
    for (int64_t k = 0; k < rows; ++k) {
      const size_t r = longer[static_cast<size_t>(k)];
      for (size_t t = 0; t + 1 < encoded[r].continuation.size(); ++t) out[r] += pa[k][static_cast<int64_t>(t)];
    }
  }
}

}  // namespace

std::vector<double> Loglikelihoods(models::LlamaForCausalLM& model, const data::Tokenizer& tokenizer,
                                   const std::vector<LoglikRequest>& requests, bool add_bos,
                                   const torch::Device& device, int64_t max_batch_tokens, bool share_contexts) {
  std::vector<EncodedRequest> encoded;
  for (const auto& r : requests) encoded.push_back(EncodeRequest(tokenizer, r, add_bos));
  std::vector<double> out(requests.size(), 0.0);
  // Contexts with several continuations of more than one token between them are worth a
  // shared pass; the rest (one choice, or single-token choices that share one row anyway)
  // run as whole rows.
  std::map<std::vector<int64_t>, std::vector<size_t>> by_context;
  for (size_t i = 0; i < encoded.size(); ++i) by_context[encoded[i].context].push_back(i);
  std::vector<size_t> whole;
  std::vector<std::vector<size_t>> shared;
  for (auto& [context, members] : by_context) {
    size_t multi = 0;
    for (size_t i : members) multi += encoded[i].continuation.size() > 1;
    if (share_contexts && members.size() > 1 && multi > 0) {
      shared.push_back(std::move(members));
    } else {
      whole.insert(whole.end(), members.begin(), members.end());
    }
  }
  std::sort(whole.begin(), whole.end());
  std::stable_sort(shared.begin(), shared.end(), [&](const auto& a, const auto& b) {
    return encoded[a[0]].context.size() > encoded[b[0]].context.size();
  });
  if (!whole.empty()) ScoreWholeRows(model, encoded, whole, device, max_batch_tokens, out);
  if (!shared.empty()) ScoreSharedContexts(model, encoded, shared, device, max_batch_tokens, out);
  return out;
}

}  // namespace sweepd::eval
