// Evaluation passes run in inference mode; the model's training flag is restored after.
#include "worker/eval/scoring.h"

#include <algorithm>

#include "worker/eval/answer_extraction.h"
#include "worker/eval/generation.h"
#include "worker/eval/loglikelihood.h"

namespace sweepd::eval {
namespace {

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

// np.argmax: the first of the largest.
int Argmax(const std::vector<double>& v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

double Percent(int64_t hits, int64_t n) { return n == 0 ? 0.0 : 100.0 * static_cast<double>(hits) / static_cast<double>(n); }

void ScoreChoices(models::LlamaForCausalLM& model, const data::Tokenizer& tokenizer, const EvalTask& task,
                  const torch::Device& device, const ScoringOptions& options, TaskResult& result) {
  std::vector<LoglikRequest> requests;
  for (const auto& item : task.choices) {
    for (const auto& c : item.continuations) requests.push_back({item.context, c});
  }
  const std::vector<double> ll =
      Loglikelihoods(model, tokenizer, requests, task.spec.add_bos, device, options.max_batch_tokens);
  size_t next = 0;
  int64_t acc = 0, acc_norm = 0;
  std::map<std::string, std::pair<int64_t, int64_t>> subjects;  // hits, n
  for (const auto& item : task.choices) {
    ChoiceResult r;
    r.loglik.assign(ll.begin() + static_cast<std::ptrdiff_t>(next),
                    ll.begin() + static_cast<std::ptrdiff_t>(next + item.continuations.size()));
    next += item.continuations.size();
    std::vector<double> normed;
    for (size_t i = 0; i < r.loglik.size(); ++i) {
      normed.push_back(r.loglik[i] / static_cast<double>(std::max<int64_t>(1, CharacterCount(item.choice_texts[i]))));
    }
    r.pred = Argmax(r.loglik);
    r.pred_norm = Argmax(normed);
    acc += r.pred == item.label;
    acc_norm += r.pred_norm == item.label;
    if (!item.subject.empty()) {
      subjects[item.subject].first += r.pred == item.label;
      ++subjects[item.subject].second;
    }
    result.choices.push_back(std::move(r));
  }
  result.n = static_cast<int64_t>(task.choices.size());
  result.metrics["acc"] = Percent(acc, result.n);
  if (task.spec.task != "mmlu") result.metrics["acc_norm"] = Percent(acc_norm, result.n);
  for (const auto& [subject, counts] : subjects) result.subjects[subject] = Percent(counts.first, counts.second);
}

void ScoreGeneration(models::LlamaForCausalLM& model, const data::Tokenizer& tokenizer, const EvalTask& task,
                     const torch::Device& device, const ScoringOptions& options, TaskResult& result) {
  GenerationSettings settings{task.spec.add_bos, task.spec.max_gen_toks, task.spec.until, options.generation_batch,
                              options.kv_cache};
  std::vector<std::string> prompts;
  for (const auto& item : task.generation) prompts.push_back(item.prompt);
  const std::vector<Generation> generated = GreedyGenerate(model, tokenizer, prompts, settings, device);
  int64_t strict = 0, flexible = 0;
  for (size_t i = 0; i < generated.size(); ++i) {
    GenerationResult r;
    r.ids = generated[i].ids;
    r.text = generated[i].text;
    r.strict = StrictMatch(r.text);
    r.flexible = FlexibleExtract(r.text);
    r.strict_match = ExactMatch(r.strict, task.generation[i].target);
    r.flexible_match = ExactMatch(r.flexible, task.generation[i].target);
    strict += r.strict_match;
    flexible += r.flexible_match;
    result.generations.push_back(std::move(r));
  }
  result.n = static_cast<int64_t>(task.generation.size());
  result.metrics["strict"] = Percent(strict, result.n);
  result.metrics["flexible"] = Percent(flexible, result.n);
}

}  // namespace

int64_t CharacterCount(const std::string& text) {
  return std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

TaskResult ScoreTask(models::LlamaForCausalLM& model, const data::Tokenizer& tokenizer, const EvalTask& task,
                     const torch::Device& device, const ScoringOptions& options) {
  torch::NoGradGuard no_grad;
  EvalMode mode(model);
  TaskResult result;
  result.score_name = task.score_name;
  if (task.generative) {
    ScoreGeneration(model, tokenizer, task, device, options, result);
  } else {
    ScoreChoices(model, tokenizer, task, device, options, result);
  }
  result.score = result.metrics.at(task.spec.metric);
  return result;
}

}  // namespace sweepd::eval
