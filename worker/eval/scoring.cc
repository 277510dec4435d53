// Evaluation passes run in inference mode; the model's training flag is restored after.
#include "worker/eval/scoring.h"

#include <algorithm>

namespace sweepd::eval {
namespace {

constexpr int64_t kMaxNewTokens = 48;
constexpr int64_t kChoiceBatch = 16;

// Runs inference with the model in eval mode and puts its mode back.
class EvalMode {
 public:
  explicit EvalMode(models::LlamaForCausalLM& model) : model_(model), was_training_(model->is_training()) {
    model_->eval();
  }
  ~EvalMode() { model_->train(was_training_); }

 private:
  models::LlamaForCausalLM& model_;
  bool was_training_;
};

bool FinishedAnswer(const std::string& text) {
  const auto mark = text.find("####");
  return mark != std::string::npos && text.find('\n', mark) != std::string::npos;
}

// Sum of log p(choice tokens | context) for one item, all choices in one batch.
int ChooseByLikelihood(models::LlamaForCausalLM& model, const data::Tokenizer& tokenizer,
                       const data::MultipleChoiceItem& item, const torch::Device& device) {
  std::vector<int64_t> context = {tokenizer.Bos()};
  for (int64_t id : tokenizer.Encode(item.context)) context.push_back(id);
  std::vector<std::vector<int64_t>> rows;
  std::vector<int64_t> starts, ends;
  size_t longest = 0;
  for (const std::string& choice : item.choices) {
    // Encode context and choice together where the tokenizer merges across the boundary
    // (SentencePiece), keeping the choice's tokens as those after the context's.
    std::vector<int64_t> row = context;
    for (int64_t id : tokenizer.Encode(choice)) row.push_back(id);
    starts.push_back(static_cast<int64_t>(context.size()));
    ends.push_back(static_cast<int64_t>(row.size()));
    longest = std::max(longest, row.size());
    rows.push_back(std::move(row));
  }
  auto ids = torch::full({static_cast<int64_t>(rows.size()), static_cast<int64_t>(longest)}, tokenizer.Eos(),
                         torch::kInt64);
  for (size_t i = 0; i < rows.size(); ++i) {
    ids[i].narrow(0, 0, static_cast<int64_t>(rows[i].size()))
        .copy_(torch::tensor(rows[i], torch::kInt64));
  }
  double best = -std::numeric_limits<double>::infinity();
  int best_index = 0;
  for (int64_t b0 = 0; b0 < ids.size(0); b0 += kChoiceBatch) {
    const int64_t nb = std::min(kChoiceBatch, ids.size(0) - b0);
    auto logp = torch::log_softmax(model->forward(ids.narrow(0, b0, nb).to(device)).to(torch::kFloat32), -1)
                    .to(torch::kCPU);
    for (int64_t i = 0; i < nb; ++i) {
      const int64_t r = b0 + i;
      double total = 0;
      for (int64_t t = starts[r]; t < ends[r]; ++t) {
        total += logp[i][t - 1][rows[r][t]].item<double>();
      }
      if (total > best) {
        best = total;
        best_index = static_cast<int>(r);
      }
    }
  }
  return best_index;
}

}  // namespace

std::string GreedyContinuation(models::LlamaForCausalLM& model, const data::Tokenizer& tokenizer,
                               const std::string& prompt, int64_t max_new_tokens, const torch::Device& device) {
  std::vector<int64_t> ids = {tokenizer.Bos()};
  for (int64_t id : tokenizer.Encode(prompt)) ids.push_back(id);
  std::vector<int64_t> generated;
  std::string text;
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    auto input = torch::tensor(ids, torch::kInt64).unsqueeze(0).to(device);
    auto logits = model->forward(input);
    const int64_t next = logits[0][-1].argmax().item<int64_t>();
    if (next == tokenizer.Eos()) break;
    ids.push_back(next);
    generated.push_back(next);
    text = tokenizer.Decode(generated);
    if (FinishedAnswer(text)) break;
  }
  return text;
}

TaskScore ScoreTask(models::LlamaForCausalLM& model, const data::Tokenizer& tokenizer, const EvalTask& task,
                    const torch::Device& device) {
  torch::NoGradGuard no_grad;
  EvalMode mode(model);
  TaskScore score;
  int64_t correct = 0;
  if (task.generative) {
    for (const auto& item : task.generation) {
      const std::string out = GreedyContinuation(model, tokenizer, item.prompt, kMaxNewTokens, device);
      correct += FinalNumber(out) == item.answer;
    }
    score.n = static_cast<int64_t>(task.generation.size());
  } else {
    for (const auto& item : task.choices) correct += ChooseByLikelihood(model, tokenizer, item, device) == item.label;
    score.n = static_cast<int64_t>(task.choices.size());
  }
  score.score = score.n == 0 ? 0.0 : 100.0 * static_cast<double>(correct) / static_cast<double>(score.n);
  return score;
}

}  // namespace sweepd::eval
