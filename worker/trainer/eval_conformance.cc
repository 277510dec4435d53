// Eval conformance (see eval_conformance.h): the folder's tasks go through the same
// LoadEvalTask and ScoreTask as a job's evaluation, with the settings reference.json gives.
#include "worker/trainer/eval_conformance.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "worker/data/tokenizer.h"
#include "worker/eval/answer_extraction.h"
#include "worker/eval/eval_tasks.h"
#include "worker/eval/scoring.h"
#include "worker/models/hf_checkpoint.h"
#include "worker/trainer/eval_folder.h"

namespace sweepd::trainer {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kLoglikTolerance = 1e-6;  // relative, float64 against transformers' float64
constexpr double kAggregateTolerance = 1e-9;
constexpr size_t kShownText = 160;

// A string as JSON writes it (quotes, escapes), shortened for one line.
std::string Quoted(const std::string& s) {
  std::string q = json(s).dump(-1, ' ', false, json::error_handler_t::replace);
  if (q.size() > kShownText) q = q.substr(0, kShownText) + "...";
  return q;
}

const json& Field(const json& obj, const std::string& key, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key)) throw std::invalid_argument(where + ": missing field '" + key + "'");
  return obj[key];
}

// Collects the differences of one task, printing them as it goes.
class TaskReport {
 public:
  explicit TaskReport(std::ostream& out) : out_(out) {}
  void Differ(const std::string& line) {
    lines_.push_back(line);
  }
  void Aggregate(const std::string& name, double ours, const json& ref) {
    if (!ref.is_number()) return;
    const double r = ref.get<double>();
    const bool same = std::abs(ours - r) <= kAggregateTolerance;
    char line[160];
    std::snprintf(line, sizeof line, "  %-22s ours %9.4f  reference %9.4f%s", name.c_str(), ours, r, same ? "" : "  DIFFERS");
    aggregates_.push_back(line);
    if (!same) ++differences_;
  }
  int Print(const std::string& head) {
    const int n = differences_ + static_cast<int>(lines_.size());
    out_ << head << ": " << (n == 0 ? "ok" : "FAIL (" + std::to_string(n) + " difference(s))") << "\n";
    if (!loglik_line_.empty()) out_ << loglik_line_ << "\n";
    for (const auto& l : aggregates_) out_ << l << "\n";
    for (const auto& l : lines_) out_ << "  " << l << "\n";
    return n;
  }
  void LoglikError(double worst, bool ok) {
    char line[160];
    std::snprintf(line, sizeof line, "  largest log-likelihood error %.3e relative (max %.0e)%s", worst, kLoglikTolerance,
                  ok ? "" : "  FAIL");
    loglik_line_ = line;
    if (!ok) ++differences_;
  }

 private:
  std::ostream& out_;
  std::vector<std::string> lines_, aggregates_;
  std::string loglik_line_;
  int differences_ = 0;
};

int CheckChoices(const std::string& name, const eval::EvalTask& task, const eval::TaskResult& result,
                 const json& ref_task, std::ostream& out) {
  TaskReport report(out);
  const json& items = Field(ref_task, "items", name);
  if (items.size() != task.choices.size()) {
    report.Differ("the task file has " + std::to_string(task.choices.size()) + " items, the reference " +
                  std::to_string(items.size()));
  }
  double worst = 0;
  for (size_t i = 0; i < std::min(items.size(), task.choices.size()); ++i) {
    const json& ref = items[i];
    const auto& item = task.choices[i];
    const auto& ours = result.choices[i];
    const std::string at = "item " + std::to_string(i) + ": ";
    if (ref.contains("context") && ref["context"] != item.context) {
      report.Differ(at + "context " + Quoted(item.context) + ", reference " + Quoted(ref["context"].get<std::string>()));
    }
    if (ref.contains("continuations") && ref["continuations"] != json(item.continuations)) {
      report.Differ(at + "continuations " + json(item.continuations).dump() + ", reference " +
                    ref["continuations"].dump());
    }
    const json& ll = Field(ref, "loglik", name + " " + at);
    if (ll.size() != ours.loglik.size()) {
      report.Differ(at + std::to_string(ours.loglik.size()) + " choices, reference " + std::to_string(ll.size()));
      continue;
    }
    for (size_t c = 0; c < ll.size(); ++c) {
      const double r = ll[c].get<double>();
      const double err = std::abs(ours.loglik[c] - r) / std::max(std::abs(r), 1e-300);
      worst = std::max(worst, std::isfinite(err) ? err : INFINITY);
    }
    if (ref.contains("label") && ref["label"].get<int>() != item.label) {
      report.Differ(at + "label " + std::to_string(item.label) + ", reference " + ref["label"].dump());
    }
    if (ref.contains("pred") && ref["pred"].get<int>() != ours.pred) {
      report.Differ(at + "prediction (acc) " + std::to_string(ours.pred) + ", reference " + ref["pred"].dump());
    }
    if (ref.contains("pred_norm") && ref["pred_norm"].get<int>() != ours.pred_norm) {
      report.Differ(at + "prediction (acc_norm) " + std::to_string(ours.pred_norm) + ", reference " +
                    ref["pred_norm"].dump());
    }
  }
  report.LoglikError(worst, worst <= kLoglikTolerance);
  for (const auto& [metric, value] : result.metrics) {
    if (ref_task.contains(metric)) report.Aggregate(metric, value, ref_task[metric]);
  }
  const std::string head = name + " (" + std::to_string(task.spec.num_fewshot) + "-shot, " +
                           std::to_string(task.choices.size()) + " items)";
  return report.Print(head);
}

int CheckGeneration(const std::string& name, const eval::EvalTask& task, const eval::TaskResult& result,
                    const json& ref_task, std::ostream& out) {
  TaskReport report(out);
  const json& items = Field(ref_task, "items", name);
  if (items.size() != task.generation.size()) {
    report.Differ("the task file has " + std::to_string(task.generation.size()) + " items, the reference " +
                  std::to_string(items.size()));
  }
  for (size_t i = 0; i < std::min(items.size(), task.generation.size()); ++i) {
    const json& ref = items[i];
    const auto& ours = result.generations[i];
    const std::string at = "item " + std::to_string(i) + ": ";
    if (ref.contains("prompt") && ref["prompt"] != task.generation[i].prompt) {
      report.Differ(at + "prompt " + Quoted(task.generation[i].prompt) + ", reference " +
                    Quoted(ref["prompt"].get<std::string>()));
    }
    if (ref.contains("generated_ids") && ref["generated_ids"] != json(ours.ids)) {
      report.Differ(at + "generated ids " + json(ours.ids).dump() + ", reference " + ref["generated_ids"].dump());
    }
    if (ref.contains("generation") && ref["generation"].get<std::string>() != ours.text) {
      report.Differ(at + "generation " + Quoted(ours.text) + ", reference " + Quoted(ref["generation"].get<std::string>()));
    }
    for (const auto& [key, value] : {std::pair<std::string, std::string>{"strict", ours.strict}, {"flexible", ours.flexible}}) {
      if (ref.contains(key) && ref[key].get<std::string>() != value) {
        report.Differ(at + key + " answer " + Quoted(value) + ", reference " + Quoted(ref[key].get<std::string>()));
      }
    }
    for (const auto& [key, value] : {std::pair<std::string, bool>{"strict_match", ours.strict_match},
                                     {"flexible_match", ours.flexible_match}}) {
      if (ref.contains(key) && (ref[key].get<int>() != 0) != value) {
        report.Differ(at + key + " " + std::to_string(value) + ", reference " + ref[key].dump());
      }
    }
  }
  for (const auto& [metric, value] : result.metrics) {
    const std::string key = "exact_match_" + metric;
    if (ref_task.contains(key)) report.Aggregate(key, value, ref_task[key]);
  }
  const std::string head = name + " (" + std::to_string(task.spec.num_fewshot) + "-shot, " +
                           std::to_string(task.generation.size()) + " items, at most " +
                           std::to_string(task.spec.max_gen_toks) + " new tokens)";
  return report.Print(head);
}

int CheckExtraction(const json& cases, std::ostream& out) {
  TaskReport report(out);
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string text = Field(cases[i], "text", "extraction[" + std::to_string(i) + "]").get<std::string>();
    const std::string strict = eval::StrictMatch(text), flexible = eval::FlexibleExtract(text);
    const std::string at = "case " + std::to_string(i) + " " + Quoted(text) + ": ";
    if (cases[i].value("strict", strict) != strict) {
      report.Differ(at + "strict " + Quoted(strict) + ", reference " + Quoted(cases[i]["strict"].get<std::string>()));
    }
    if (cases[i].value("flexible", flexible) != flexible) {
      report.Differ(at + "flexible " + Quoted(flexible) + ", reference " +
                    Quoted(cases[i]["flexible"].get<std::string>()));
    }
  }
  return report.Print("extraction (" + std::to_string(cases.size()) + " cases)");
}

int Run(const fs::path& dir, std::ostream& out) {
  const EvalFolder folder = ReadEvalFolder(dir.string());
  if (folder.tokenizer.empty()) {
    throw std::invalid_argument((dir / "tokenizer.model").string() + ": no SentencePiece tokenizer in the folder");
  }
  auto tokenizer = data::LoadSentencePieceTokenizer(folder.tokenizer);
  auto model = models::LoadHfModel((dir / "model").string(), torch::kFloat32);
  model->to(torch::kFloat64);
  out << dir.string() << ": evaluation against " << folder.reference.value("made_by", std::string("the reference"))
      << "\n";
  int differences = 0;
  for (const auto& [name, spec] : folder.tasks) {
    const json& ref_task = folder.reference["tasks"][name];
    const eval::EvalTask task = eval::LoadEvalTask(spec);
    const eval::TaskResult result = eval::ScoreTask(model, *tokenizer, task, torch::kCPU);
    differences += task.generative ? CheckGeneration(name, task, result, ref_task, out)
                                   : CheckChoices(name, task, result, ref_task, out);
  }
  if (folder.reference.contains("extraction")) differences += CheckExtraction(folder.reference["extraction"], out);
  out << dir.string() << ": " << (differences == 0 ? "ok" : std::to_string(differences) + " difference(s)") << "\n";
  return differences == 0 ? 0 : 1;
}

}  // namespace

bool IsEvalConformancePath(const std::string& path) {
  return fs::is_directory(path) && fs::exists(fs::path(path) / "reference.json") &&
         fs::is_directory(fs::path(path) / "model");
}

int RunEvalConformance(const std::string& path, std::ostream& out) {
  try {
    return Run(fs::path(path), out);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    out << path << ": UNUSABLE: " << what.substr(0, what.find('\n')) << "\n";
    return 2;
  }
}

}  // namespace sweepd::trainer
