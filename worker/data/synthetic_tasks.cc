// Generators of the synthetic benchmark. Every example is a pure function of the seed, so a
// job, its resumption and the cached base model all see the same data.
#include "worker/data/synthetic_tasks.h"

#include <algorithm>
#include <array>
#include <random>
#include <stdexcept>

namespace sweepd::data {
namespace {

constexpr std::array<const char*, 12> kNames = {"Tom", "Ann", "Bob", "Eva", "Sam", "Mia",
                                                "Leo", "Zoe", "Max", "Ivy", "Ben", "Amy"};
constexpr std::array<const char*, 8> kThings = {"apples", "pens",  "cards", "coins",
                                                "books",  "shells", "stamps", "marbles"};
constexpr std::array<const char*, 8> kColors = {"red", "blue", "green", "pink",
                                                "gray", "gold", "white", "black"};

template <typename T, size_t N>
const T& Pick(std::mt19937_64& rng, const std::array<T, N>& items) {
  return items[std::uniform_int_distribution<size_t>(0, N - 1)(rng)];
}

int Uniform(std::mt19937_64& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

struct Arithmetic {
  std::string question;
  std::string working;
  int answer;
};

Arithmetic MakeArithmetic(std::mt19937_64& rng) {
  const std::string name = Pick(rng, kNames);
  const std::string thing = Pick(rng, kThings);
  const int a = Uniform(rng, 2, 9);
  Arithmetic p;
  if (Uniform(rng, 0, 1) == 0) {
    const int b = Uniform(rng, 1, 9);
    p.question = name + " has " + std::to_string(a) + " " + thing + ". " + name + " gets " +
                 std::to_string(b) + " more. How many " + thing + " does " + name + " have now?";
    p.working = std::to_string(a) + " + " + std::to_string(b) + " = " + std::to_string(a + b) + ".";
    p.answer = a + b;
  } else {
    const int b = Uniform(rng, 1, a);
    p.question = name + " has " + std::to_string(a) + " " + thing + ". " + name + " gives away " +
                 std::to_string(b) + ". How many " + thing + " does " + name + " have now?";
    p.working = std::to_string(a) + " - " + std::to_string(b) + " = " + std::to_string(a - b) + ".";
    p.answer = a - b;
  }
  return p;
}

std::string QuestionPrompt(const std::string& question) {
  return "Question: " + question + "\nAnswer:";
}

struct Recall {
  std::string question;
  std::vector<std::string> colors;  // the four colours, in the order the people are named
  int asked = 0;
};

Recall MakeRecall(std::mt19937_64& rng) {
  std::array<int, kNames.size()> names{};
  std::array<int, kColors.size()> colors{};
  for (size_t i = 0; i < names.size(); ++i) names[i] = static_cast<int>(i);
  for (size_t i = 0; i < colors.size(); ++i) colors[i] = static_cast<int>(i);
  std::shuffle(names.begin(), names.end(), rng);
  std::shuffle(colors.begin(), colors.end(), rng);
  Recall r;
  for (int i = 0; i < 4; ++i) {
    r.question += std::string(i == 0 ? "" : ", ") + kNames[names[i]] + " has a " + kColors[colors[i]] + " ball";
    r.colors.push_back(kColors[colors[i]]);
  }
  r.asked = Uniform(rng, 0, 3);
  r.question += ". What color is " + std::string(kNames[names[r.asked]]) + "'s ball?";
  return r;
}

std::string Counting(std::mt19937_64& rng) {
  const int start = Uniform(rng, 0, 12);
  const int length = Uniform(rng, 3, 7);
  std::string prompt = "Count from " + std::to_string(start) + ":";
  for (int i = 0; i < length; ++i) prompt += " " + std::to_string(start + i);
  return prompt + ".";
}

std::string Copying(std::mt19937_64& rng) {
  std::string word;
  const int length = Uniform(rng, 3, 6);
  for (int i = 0; i < length; ++i) word.push_back(static_cast<char>('a' + Uniform(rng, 0, 25)));
  return "Repeat " + word + ": " + word + ".";
}

}  // namespace

std::vector<InstructionExample> ArithmeticExamples(uint64_t seed, int64_t count) {
  std::mt19937_64 rng(seed);
  std::vector<InstructionExample> out;
  for (int64_t i = 0; i < count; ++i) {
    Arithmetic p = MakeArithmetic(rng);
    out.push_back({QuestionPrompt(p.question), " " + p.working + "\n#### " + std::to_string(p.answer)});
  }
  return out;
}

std::vector<GenerationItem> ArithmeticEvalItems(uint64_t seed, int64_t count) {
  std::mt19937_64 rng(seed);
  std::vector<GenerationItem> out;
  for (int64_t i = 0; i < count; ++i) {
    Arithmetic p = MakeArithmetic(rng);
    out.push_back({QuestionPrompt(p.question), std::to_string(p.answer)});
  }
  return out;
}

std::vector<InstructionExample> RecallExamples(uint64_t seed, int64_t count) {
  std::mt19937_64 rng(seed);
  std::vector<InstructionExample> out;
  for (int64_t i = 0; i < count; ++i) {
    Recall r = MakeRecall(rng);
    out.push_back({QuestionPrompt(r.question), " " + r.colors[r.asked]});
  }
  return out;
}

std::vector<MultipleChoiceItem> RecallEvalItems(uint64_t seed, int64_t count) {
  std::mt19937_64 rng(seed);
  std::vector<MultipleChoiceItem> out;
  for (int64_t i = 0; i < count; ++i) {
    Recall r = MakeRecall(rng);
    MultipleChoiceItem item{QuestionPrompt(r.question), {}, r.asked};
    for (const std::string& c : r.colors) item.choices.push_back(" " + c);
    out.push_back(std::move(item));
  }
  return out;
}

std::vector<InstructionExample> PretrainingExamples(uint64_t seed, int64_t count) {
  std::mt19937_64 rng(seed);
  std::vector<InstructionExample> out;
  for (int64_t i = 0; i < count; ++i) {
    const int kind = Uniform(rng, 0, 9);
    if (kind < 7) {
      Arithmetic p = MakeArithmetic(rng);
      out.push_back({QuestionPrompt(p.question), " " + p.working + "\n#### " + std::to_string(p.answer)});
    } else if (kind < 9) {
      out.push_back({"", Counting(rng)});
    } else {
      out.push_back({"", Copying(rng)});
    }
  }
  return out;
}

std::vector<InstructionExample> SyntheticTrainingExamples(const std::string& name, uint64_t seed,
                                                          int64_t count) {
  if (name == "arith" || name == "gsm8k") return ArithmeticExamples(seed, count);
  if (name == "mc" || name == "recall") return RecallExamples(seed, count);
  throw std::invalid_argument("unknown synthetic data 'synthetic:" + name +
                              "'; known: synthetic:arith, synthetic:mc");
}

}  // namespace sweepd::data
