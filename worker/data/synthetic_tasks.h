// The synthetic benchmark's skills, generated deterministically from a seed so that no
// download is needed: arithmetic word problems shaped like GSM8K (answer after "####"),
// counting and copying (pre-training only), and a successor skill shaped like ARC multiple
// choice that the base model never sees (the fine-tuning target).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "worker/data/examples.h"

namespace sweepd::data {

// "Question: Tom has 7 apples. He gets 5 more. How many apples does Tom have now?\nAnswer:"
// -> " 7 + 5 = 12.\n#### 12".
std::vector<InstructionExample> ArithmeticExamples(uint64_t seed, int64_t count);
std::vector<GenerationItem> ArithmeticEvalItems(uint64_t seed, int64_t count);

// "Q: What number comes after 12?\nA:" -> " 13", with four numeric choices
// (the successor, the number itself, one below or three above, two above).
std::vector<InstructionExample> SuccessorExamples(uint64_t seed, int64_t count);
std::vector<MultipleChoiceItem> SuccessorEvalItems(uint64_t seed, int64_t count);

// The pre-training mixture of the synthetic base model: arithmetic, counting, copying.
std::vector<InstructionExample> PretrainingExamples(uint64_t seed, int64_t count);

// Training examples of a "synthetic:<skill>" data name (arith, mc); throws
// InvalidInput listing the known names.
std::vector<InstructionExample> SyntheticTrainingExamples(const std::string& name, uint64_t seed,
                                                          int64_t count);

}  // namespace sweepd::data
