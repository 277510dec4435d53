// Instruction-tuning sets in JSONL: Alpaca rows {instruction, input, output} and chat rows
// {messages: [{role, content}, ...]}; the loss covers the response (the assistant's turns).
#pragma once

#include <string>
#include <vector>

#include "worker/data/examples.h"

namespace sweepd::data {

// Reads every row of `path`; throws DataError ("FILE:LINE: problem") for a malformed row.
std::vector<InstructionExample> ReadInstructionFile(const std::string& path);

// The prompt of an Alpaca row, in the Alpaca template.
std::string AlpacaPrompt(const std::string& instruction, const std::string& input);

}  // namespace sweepd::data
