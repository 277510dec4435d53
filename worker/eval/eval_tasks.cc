// Task readers. Prompts follow lm-evaluation-harness: "Question: ...\nAnswer:" for GSM8K and
// ARC, the lettered MMLU template, and HellaSwag's context with the ending as continuation.
#include "worker/eval/eval_tasks.h"

#include <stdexcept>

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

data::GenerationItem Gsm8kRow(const json& row, const std::string& path, int64_t line) {
  const std::string answer = FinalNumber(StringField(row, "answer", path, line));
  if (answer.empty()) throw DataError(path, line, "field 'answer' has no final number after '####'");
  return {"Question: " + StringField(row, "question", path, line) + "\nAnswer:", answer};
}

data::MultipleChoiceItem ArcRow(const json& row, const std::string& path, int64_t line) {
  const std::string question = StringField(row, "question", path, line);
  if (!row.contains("choices") || !row["choices"].is_object() || !row["choices"].contains("text") ||
      !row["choices"].contains("label") || !row["choices"]["text"].is_array() ||
      !row["choices"]["label"].is_array()) {
    throw DataError(path, line, "field 'choices' must be {\"text\": [...], \"label\": [...]}");
  }
  const std::string key = StringField(row, "answerKey", path, line);
  data::MultipleChoiceItem item{"Question: " + question + "\nAnswer:", {}, -1};
  const json& text = row["choices"]["text"];
  const json& label = row["choices"]["label"];
  if (text.size() != label.size() || text.empty()) {
    throw DataError(path, line, "'choices.text' and 'choices.label' differ in length or are empty");
  }
  for (size_t i = 0; i < text.size(); ++i) {
    if (!text[i].is_string() || !label[i].is_string()) throw DataError(path, line, "choices must be strings");
    item.choices.push_back(std::string(" ").append(text[i].get<std::string>()));
    if (label[i].get<std::string>() == key) item.label = static_cast<int>(i);
  }
  if (item.label < 0) throw DataError(path, line, "answerKey '" + key + "' is not among the choice labels");
  return item;
}

data::MultipleChoiceItem MmluRow(const json& row, const std::string& path, int64_t line) {
  const std::string question = StringField(row, "question", path, line);
  if (!row.contains("choices") || !row["choices"].is_array() || row["choices"].empty()) {
    throw DataError(path, line, "field 'choices' must be a non-empty list");
  }
  const json& choices = row["choices"];
  std::string context = question + "\n";
  data::MultipleChoiceItem item;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (!choices[i].is_string()) throw DataError(path, line, "choices must be strings");
    const std::string letter(1, static_cast<char>('A' + i));
    context += letter + ". " + choices[i].get<std::string>() + "\n";
    item.choices.push_back(" " + letter);
  }
  item.context = context + "Answer:";
  if (!row.contains("answer")) throw DataError(path, line, "missing field 'answer'");
  const json& answer = row["answer"];
  if (answer.is_number_integer()) {
    item.label = answer.get<int>();
  } else if (answer.is_string() && answer.get<std::string>().size() == 1) {
    item.label = answer.get<std::string>()[0] - 'A';
  } else {
    throw DataError(path, line, "field 'answer' must be an index or a letter, not " + answer.dump());
  }
  if (item.label < 0 || item.label >= static_cast<int>(choices.size())) {
    throw DataError(path, line, "field 'answer' " + answer.dump() + " is out of range");
  }
  return item;
}

data::MultipleChoiceItem HellaswagRow(const json& row, const std::string& path, int64_t line) {
  std::string context;
  if (row.contains("ctx")) {
    context = StringField(row, "ctx", path, line);
  } else {
    context = StringField(row, "ctx_a", path, line) + " " + StringField(row, "ctx_b", path, line);
  }
  if (!row.contains("endings") || !row["endings"].is_array() || row["endings"].empty()) {
    throw DataError(path, line, "field 'endings' must be a non-empty list");
  }
  data::MultipleChoiceItem item{context, {}, 0};
  for (const json& e : row["endings"]) {
    if (!e.is_string()) throw DataError(path, line, "endings must be strings");
    item.choices.push_back(std::string(" ").append(e.get<std::string>()));
  }
  if (!row.contains("label")) throw DataError(path, line, "missing field 'label'");
  const json& label = row["label"];
  if (label.is_number_integer()) {
    item.label = label.get<int>();
  } else if (label.is_string()) {
    try {
      item.label = std::stoi(label.get<std::string>());
    } catch (const std::exception&) {
      throw DataError(path, line, "field 'label' must be an index, not " + label.dump());
    }
  } else {
    throw DataError(path, line, "field 'label' must be an index, not " + label.dump());
  }
  if (item.label < 0 || item.label >= static_cast<int>(item.choices.size())) {
    throw DataError(path, line, "field 'label' " + label.dump() + " is out of range");
  }
  return item;
}

template <typename T>
void Limit(std::vector<T>& items, int64_t limit) {
  if (limit > 0 && static_cast<int64_t>(items.size()) > limit) items.resize(limit);
}

}  // namespace

std::string FinalNumber(const std::string& text) {
  const auto mark = text.rfind("####");
  if (mark == std::string::npos) return "";
  std::string number;
  size_t i = mark + 4;
  while (i < text.size() && (text[i] == ' ' || text[i] == '$')) ++i;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (std::isdigit(static_cast<unsigned char>(c)) || (c == '-' && number.empty()) || c == '.') {
      number.push_back(c);
    } else if (c != ',') {
      break;
    }
  }
  while (!number.empty() && number.back() == '.') number.pop_back();
  if (number == "-") return "";
  return number;
}

EvalTask LoadEvalTask(const EvalSpec& spec) {
  EvalTask task;
  task.name = spec.task;
  static const std::vector<std::string> kTasks = {"gsm8k", "arc_challenge", "mmlu", "hellaswag"};
  if (std::find(kTasks.begin(), kTasks.end(), spec.task) == kTasks.end()) {
    throw InvalidInput("unknown eval task '" + spec.task +
                                "'; known: gsm8k, arc_challenge, mmlu, hellaswag");
  }
  task.generative = spec.task == "gsm8k";
  const std::string prefix = "synthetic:";
  if (spec.data.rfind(prefix, 0) == 0) {
    const std::string name = spec.data.substr(prefix.size());
    const int64_t n = spec.limit > 0 ? spec.limit : kSyntheticEvalItems;
    if (task.generative && (name == "arith" || name == "gsm8k")) {
      task.generation = data::ArithmeticEvalItems(kSyntheticEvalSeed, n);
    } else if (!task.generative && (name == "mc" || name == "successor")) {
      task.choices = data::SuccessorEvalItems(kSyntheticEvalSeed + 1, n);
    } else {
      throw InvalidInput("eval data '" + spec.data + "' does not fit task '" + spec.task +
                                  "' (gsm8k: synthetic:arith; multiple choice: synthetic:mc)");
    }
    return task;
  }
  if (spec.data.empty()) throw InvalidInput("eval task '" + spec.task + "' has no data");
  data::ForEachJsonLine(spec.data, [&](const json& row, int64_t line) {
    if (spec.task == "gsm8k") task.generation.push_back(Gsm8kRow(row, spec.data, line));
    if (spec.task == "arc_challenge") task.choices.push_back(ArcRow(row, spec.data, line));
    if (spec.task == "mmlu") task.choices.push_back(MmluRow(row, spec.data, line));
    if (spec.task == "hellaswag") task.choices.push_back(HellaswagRow(row, spec.data, line));
  });
  Limit(task.generation, spec.limit);
  Limit(task.choices, spec.limit);
  if (task.generation.empty() && task.choices.empty()) {
    throw InvalidInput(spec.data + ": no evaluation items");
  }
  return task;
}

}  // namespace sweepd::eval
