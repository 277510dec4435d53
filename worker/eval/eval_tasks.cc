// Task readers and prompt construction after lm-evaluation-harness's task definitions
// (lm_eval/tasks/gsm8k/gsm8k.yaml, arc/arc_easy.yaml, mmlu/default/_default_template_yaml,
// hellaswag/utils.py): doc_to_text, " " as the target delimiter, "\n\n" between few-shot
// examples, MMLU's subject description before them.
#include "worker/eval/eval_tasks.h"

#include <algorithm>
#include <cctype>
#include <random>
#include <stdexcept>

#include "common/eval_settings.h"
#include "worker/data/jsonl.h"
#include "worker/data/synthetic_tasks.h"
#include "worker/failures.h"

namespace sweepd::eval {
namespace {

using data::DataError;
using data::StringField;
using nlohmann::json;

constexpr uint64_t kSyntheticEvalSeed = 0x5EED0EFA11ULL;  // one fixed eval set for every job
constexpr int64_t kSyntheticEvalItems = 200;

// One row of a task file as the harness sees it: the text before the answer, the answer
// (gsm8k) or the choices and the gold index.
struct Doc {
  std::string text;
  std::string target;                // gsm8k: the whole answer
  std::vector<std::string> choices;  // multiple choice
  int gold = 0;
  std::string subject;               // mmlu
};

std::string Strip(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\n\r\f\v");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\n\r\f\v") - first + 1);
}

// Python's str.capitalize for ASCII: first letter upper, the rest lower.
std::string Capitalize(std::string s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    s[i] = static_cast<char>(i == 0 ? std::toupper(c) : std::tolower(c));
  }
  return s;
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

int IndexField(const json& row, const char* key, size_t choices, const std::string& path, int64_t line) {
  if (!row.contains(key)) throw DataError(path, line, std::string("missing field '") + key + "'");
  const json& v = row[key];
  int index = -1;
  const std::string text = v.is_string() ? v.get<std::string>() : "";
  const bool digits = !text.empty() && text.size() < 6 &&
                      std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
  if (v.is_number_integer()) {
    index = v.get<int>();
  } else if (digits) {
    index = std::stoi(text);
  } else if (text.size() == 1 && std::isupper(static_cast<unsigned char>(text[0]))) {
    index = text[0] - 'A';  // MMLU rows that give the letter
  } else {
    throw DataError(path, line, std::string("field '") + key + "' must be an index, not " + v.dump());
  }
  if (index < 0 || index >= static_cast<int>(choices)) {
    throw DataError(path, line, std::string("field '") + key + "' " + v.dump() + " is out of range (" +
                                    std::to_string(choices) + " choices)");
  }
  return index;
}

std::vector<std::string> StringList(const json& row, const char* key, const std::string& path, int64_t line) {
  if (!row.contains(key)) throw DataError(path, line, std::string("missing field '") + key + "'");
  const json& v = row[key];
  if (!v.is_array() || v.empty() || !std::all_of(v.begin(), v.end(), [](const json& s) { return s.is_string(); })) {
    throw DataError(path, line, std::string("field '") + key + "' must be a non-empty list of strings");
  }
  return v.get<std::vector<std::string>>();
}

Doc Gsm8kDoc(const json& row, const std::string& path, int64_t line) {
  Doc d;
  d.text = "Question: " + StringField(row, "question", path, line) + "\nAnswer:";
  d.target = StringField(row, "answer", path, line);
  return d;
}

Doc ArcDoc(const json& row, const std::string& path, int64_t line) {
  Doc d;
  d.text = "Question: " + StringField(row, "question", path, line) + "\nAnswer:";
  if (!row.contains("choices") || !row["choices"].is_object()) {
    throw DataError(path, line, "field 'choices' must be {\"text\": [...], \"label\": [...]}");
  }
  d.choices = StringList(row["choices"], "text", path, line);
  const std::vector<std::string> labels = StringList(row["choices"], "label", path, line);
  if (labels.size() != d.choices.size()) throw DataError(path, line, "'choices.text' and 'choices.label' differ in length");
  const std::string key = StringField(row, "answerKey", path, line);
  const auto it = std::find(labels.begin(), labels.end(), key);
  if (it == labels.end()) throw DataError(path, line, "answerKey '" + key + "' is not among the choice labels");
  d.gold = static_cast<int>(it - labels.begin());
  return d;
}

Doc MmluDoc(const json& row, const std::string& path, int64_t line) {
  Doc d;
  d.subject = StringField(row, "subject", path, line);
  const std::vector<std::string> options = StringList(row, "choices", path, line);
  if (options.size() > 26) throw DataError(path, line, "field 'choices' has more than 26 entries");
  d.text = Strip(StringField(row, "question", path, line));
  for (size_t i = 0; i < options.size(); ++i) {
    const std::string letter(1, static_cast<char>('A' + i));
    d.text += "\n" + letter + ". " + options[i];
    d.choices.push_back(letter);
  }
  d.text += "\nAnswer:";
  d.gold = IndexField(row, "answer", options.size(), path, line);
  return d;
}

Doc HellaswagDoc(const json& row, const std::string& path, int64_t line) {
  Doc d;
  const std::string ctx = StringField(row, "ctx_a", path, line) + " " + Capitalize(StringField(row, "ctx_b", path, line));
  d.text = HellaswagPreprocess(StringField(row, "activity_label", path, line) + ": " + ctx);
  for (const std::string& e : StringList(row, "endings", path, line)) d.choices.push_back(HellaswagPreprocess(e));
  d.gold = IndexField(row, "label", d.choices.size(), path, line);
  return d;
}

Doc ParseDoc(const std::string& task, const json& row, const std::string& path, int64_t line) {
  if (task == "gsm8k") return Gsm8kDoc(row, path, line);
  if (task == "arc_challenge") return ArcDoc(row, path, line);
  if (task == "mmlu") return MmluDoc(row, path, line);
  return HellaswagDoc(row, path, line);
}

std::vector<Doc> ReadDocs(const std::string& task, const std::string& path) {
  std::vector<Doc> docs;
  data::ForEachJsonLine(path, [&](const json& row, int64_t line) { docs.push_back(ParseDoc(task, row, path, line)); });
  return docs;
}

// The example as it appears among the few-shot examples: text, delimiter, answer.
std::string FewshotExample(const Doc& d, bool generative) {
  return d.text + " " + (generative ? d.target : d.choices[d.gold]);
}

// The first `n` of `pool`, or `n` drawn with `seed` (a Fisher-Yates shuffle on mt19937_64).
std::vector<const Doc*> PickFewshot(std::vector<const Doc*> pool, int64_t n, const std::optional<int64_t>& seed) {
  if (seed) {
    std::mt19937_64 rng(static_cast<uint64_t>(*seed));
    for (size_t i = pool.size(); i > 1; --i) std::swap(pool[i - 1], pool[rng() % i]);
  }
  pool.resize(static_cast<size_t>(n));
  return pool;
}

std::string MmluDescription(const std::string& subject) {
  return "The following are multiple choice questions (with answers) about " + ReplaceAll(subject, "_", " ") + ".\n\n";
}

// Few-shot prefix for each eval doc: description (MMLU) and the examples joined by "\n\n".
std::string FewshotPrefix(const EvalSpec& spec, bool generative, const Doc& doc, const std::vector<Doc>& fewshot) {
  std::string prefix = spec.task == "mmlu" ? MmluDescription(doc.subject) : "";
  if (spec.num_fewshot == 0) return prefix;
  std::vector<const Doc*> pool;
  for (const Doc& d : fewshot) {
    if (spec.task != "mmlu" || d.subject == doc.subject) pool.push_back(&d);
  }
  if (static_cast<int64_t>(pool.size()) < spec.num_fewshot) {
    const std::string what = spec.task == "mmlu" ? "dev rows of subject '" + doc.subject + "'" : "rows";
    throw InvalidInput(spec.fewshot + ": " + std::to_string(pool.size()) + " " + what + ", but " +
                                spec.task + "'s num_fewshot is " + std::to_string(spec.num_fewshot) +
                                "; add rows to the file or lower num_fewshot");
  }
  for (const Doc* d : PickFewshot(pool, spec.num_fewshot, spec.fewshot_seed)) {
    prefix += FewshotExample(*d, generative) + "\n\n";
  }
  return prefix;
}

void LoadSynthetic(EvalTask& task) {
  const EvalSpec& spec = task.spec;
  const std::string name = spec.data.substr(std::string("synthetic:").size());
  const int64_t n = spec.limit > 0 ? spec.limit : kSyntheticEvalItems;
  if (task.generative && (name == "arith" || name == "gsm8k")) {
    for (const auto& item : data::ArithmeticEvalItems(kSyntheticEvalSeed, n)) {
      task.generation.push_back({item.prompt, item.answer});
    }
  } else if (!task.generative && (name == "mc" || name == "successor")) {
    for (const auto& item : data::SuccessorEvalItems(kSyntheticEvalSeed + 1, n)) {
      ChoiceItem c{item.context, item.choices, {}, item.label, ""};
      for (const std::string& text : item.choices) c.choice_texts.push_back(text.substr(text.rfind(' ', 0) == 0 ? 1 : 0));
      task.choices.push_back(std::move(c));
    }
  } else {
    throw InvalidInput("eval data '" + spec.data + "' does not fit task '" + spec.task +
                                "' (gsm8k: synthetic:arith; multiple choice: synthetic:mc)");
  }
}

}  // namespace

std::string HellaswagPreprocess(const std::string& text) {
  std::string s = ReplaceAll(Strip(text), " [title]", ". ");
  std::string out;  // re.sub("\\[.*?\\]", "", s): a '[' up to the next ']' on the same line
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '[') {
      const size_t close = s.find_first_of("]\n", i + 1);
      if (close != std::string::npos && s[close] == ']') {
        i = close;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return ReplaceAll(out, "  ", " ");
}

EvalTask LoadEvalTask(const EvalSpec& spec) {
  EvalTask task;
  task.spec = spec;
  const EvalTaskInfo* info = FindEvalTask(spec.task);
  if (info == nullptr) throw InvalidInput("unknown eval task '" + spec.task + "'");
  task.generative = info->generative;
  task.score_name = ScoreName(spec);
  if (IsSyntheticEval(spec)) {
    LoadSynthetic(task);
    return task;
  }
  if (spec.data.empty()) throw InvalidInput("eval task '" + spec.task + "' has no data");
  std::vector<Doc> docs = ReadDocs(spec.task, spec.data);
  if (spec.limit > 0 && static_cast<int64_t>(docs.size()) > spec.limit) docs.resize(static_cast<size_t>(spec.limit));
  if (docs.empty()) throw InvalidInput(spec.data + ": no evaluation items");
  std::vector<Doc> fewshot;
  if (spec.num_fewshot > 0) fewshot = ReadDocs(spec.task, spec.fewshot);
  for (const Doc& d : docs) {
    const std::string prompt = FewshotPrefix(spec, task.generative, d, fewshot) + d.text;
    if (task.generative) {
      task.generation.push_back({prompt, d.target});
      continue;
    }
    ChoiceItem item{prompt, {}, d.choices, d.gold, d.subject};
    for (const std::string& c : d.choices) item.continuations.push_back(" " + c);
    task.choices.push_back(std::move(item));
  }
  return task;
}

}  // namespace sweepd::eval
