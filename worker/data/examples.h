// The units of training and evaluation data, independent of where they come from
// (JSONL files or the synthetic benchmark).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace sweepd::data {

// A byte range [begin, end) of a text.
struct ByteSpan {
  size_t begin = 0;
  size_t end = 0;
};

// One supervised example: the loss covers `response` only. A chat rendered by the model's
// template is `text` instead (prompt and response empty), the loss on its `trained` ranges.
struct InstructionExample {
  InstructionExample() = default;
  InstructionExample(std::string p, std::string r) : prompt(std::move(p)), response(std::move(r)) {}

  std::string prompt;
  std::string response;
  std::string text;
  std::vector<ByteSpan> trained;
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
