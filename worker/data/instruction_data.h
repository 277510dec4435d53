// Instruction-tuning sets in JSONL: Alpaca rows {instruction, input, output} and chat rows
// {messages: [{role, content}, ...]}; the loss covers the response (the assistant's turns).
// With the model's chat template a chat row is rendered by it (chat_template.h), else in a
// plain "<|role|>" layout that trains the last assistant turn.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "worker/data/examples.h"

namespace sweepd::data {

struct ChatTemplate;

// Reads every row of `path`; throws DataError ("FILE:LINE: problem") for a malformed row, a
// template that raises included. `chat` (may be null): the model's chat template. `stop` (may
// be null): reading ends with an exception between lines once it is true (jsonl.h).
std::vector<InstructionExample> ReadInstructionFile(const std::string& path, const ChatTemplate* chat = nullptr,
                                                    const std::atomic<bool>* stop = nullptr);

// The prompt of an Alpaca row, in the Alpaca template.
std::string AlpacaPrompt(const std::string& instruction, const std::string& input);

}  // namespace sweepd::data
