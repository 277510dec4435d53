// The units of training and evaluation data, independent of where they come from
// (JSONL files or the synthetic benchmark).
#pragma once

#include <string>
#include <vector>

namespace sweepd::data {

// One supervised example: the loss covers `response` only.
struct InstructionExample {
  std::string prompt;
  std::string response;
};

// Exact match of the final number (GSM8K): the model continues `prompt`; `answer` is the
// number that must follow "####".
struct GenerationItem {
  std::string prompt;
  std::string answer;
};

// Multiple choice by log-likelihood (ARC, MMLU, HellaSwag): the choice the model finds most
// likely as a continuation of `context` is its answer.
struct MultipleChoiceItem {
  std::string context;
  std::vector<std::string> choices;  // continuations, each with its leading space if any
  int label = 0;
};

}  // namespace sweepd::data
