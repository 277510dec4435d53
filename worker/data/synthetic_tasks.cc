// Generators of the synthetic benchmark. Every example is a pure function of the seed, so a
// job, its resumption and the cached base model all see the same data.
#include "worker/data/synthetic_tasks.h"

#include <algorithm>
#include <array>
#include <random>
#include <stdexcept>

#include "worker/failures.h"

namespace sweepd::data {
namespace {

constexpr std::array<const char*, 12> kNames = {"Tom", "Ann", "Bob", "Eva", "Sam", "Mia",
                                                "Leo", "Zoe", "Max", "Ivy", "Ben", "Amy"};
constexpr std::array<const char*, 8> kThings = {"apples", "pens",  "cards", "coins",
                                                "books",  "shells", "stamps", "marbles"};

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

// The fine-tuning skill: "What number comes after n?". The base model can count (it is
// pre-trained on "Count from 5: 5 6 7 8.") but has never seen the question, and after
// "Answer:" it tends to repeat the question's number as its arithmetic answers begin.
// Choices: n + 1 (true), n, n - 1 or n + 3, n + 2, in a seeded order.
struct Successor {
  std::string question;
  std::vector<std::string> values;  // the four choices
  int asked = 0;                    // index of the true answer among them
};

// Its own prompt style, so that the model can tell the new skill from the word problems
// (whose answers end in "#### n") rather than unlearn their format.
std::string SuccessorPrompt(const std::string& question) { return "Q: " + question + "\nA:"; }

Successor MakeSuccessor(std::mt19937_64& rng) {
  const int n = Uniform(rng, 1, 30);
  std::array<int, 4> choices{n + 1, n, n > 1 ? n - 1 : n + 3, n + 2};
  std::array<int, 4> order{0, 1, 2, 3};
  std::shuffle(order.begin(), order.end(), rng);
  Successor r;
  for (int i = 0; i < 4; ++i) {
    if (order[i] == 0) r.asked = i;
    r.values.push_back(std::to_string(choices[order[i]]));
  }
  r.question.append("What number comes after ").append(std::to_string(n)).append("?");
  return r;
}

std::string Counting(std::mt19937_64& rng) {
  const int start = Uniform(rng, 0, 12);
  const int length = Uniform(rng, 3, 7);
  std::string prompt = "Count from ";
  prompt.append(std::to_string(start)).append(":");
  for (int i = 0; i < length; ++i) prompt.append(" ").append(std::to_string(start + i));
  return prompt.append(".");
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

std::vector<InstructionExample> SuccessorExamples(uint64_t seed, int64_t count) {
  std::mt19937_64 rng(seed);
  std::vector<InstructionExample> out;
  for (int64_t i = 0; i < count; ++i) {
    Successor r = MakeSuccessor(rng);
    out.push_back({SuccessorPrompt(r.question), " " + r.values[r.asked]});
  }
  return out;
}

std::vector<MultipleChoiceItem> SuccessorEvalItems(uint64_t seed, int64_t count) {
  std::mt19937_64 rng(seed);
  std::vector<MultipleChoiceItem> out;
  for (int64_t i = 0; i < count; ++i) {
    Successor r = MakeSuccessor(rng);
    MultipleChoiceItem item{SuccessorPrompt(r.question), {}, r.asked};
    for (const std::string& c : r.values) item.choices.push_back(" " + c);
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
  if (name == "mc" || name == "successor") return SuccessorExamples(seed, count);
  throw InvalidInput("unknown synthetic data 'synthetic:" + name +
                              "'; known: synthetic:arith, synthetic:mc");
}

}  // namespace sweepd::data
