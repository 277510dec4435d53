// Alpaca and chat JSONL rows as prompt/response pairs, or chats rendered by the model's
// template. Without one a chat row trains on its last assistant turn, every earlier turn in
// the prompt.
#include "worker/data/instruction_data.h"

#include "worker/data/chat_template.h"
#include "worker/data/jsonl.h"
#include "worker/failures.h"

namespace sweepd::data {
namespace {

InstructionExample FromChat(const nlohmann::json& row, const std::string& path, int64_t line,
                            const ChatTemplate* chat) {
  const nlohmann::json& messages = row["messages"];
  if (!messages.is_array() || messages.empty()) {
    throw DataError(path, line, "'messages' must be a non-empty list");
  }
  int64_t last_assistant = -1;
  for (size_t i = 0; i < messages.size(); ++i) {
    const nlohmann::json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
        !m["content"].is_string()) {
      throw DataError(path, line, "messages[" + std::to_string(i) + "] needs string 'role' and 'content'");
    }
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant") {
      throw DataError(path, line, "messages[" + std::to_string(i) + "] has unknown role '" + role +
                                      "' (known: system, user, assistant)");
    }
    if (role == "assistant") last_assistant = static_cast<int64_t>(i);
  }
  if (last_assistant < 0) throw DataError(path, line, "no assistant message to train on");
  if (chat != nullptr) {
    Result<InstructionExample> rendered = RenderChat(*chat, nlohmann::ordered_json(messages));
    if (!rendered.ok()) throw DataError(path, line, rendered.status().message());
    return std::move(*rendered);
  }
  InstructionExample ex;
  for (int64_t i = 0; i < last_assistant; ++i) {
    ex.prompt += "<|" + messages[i]["role"].get<std::string>() + "|>\n" +
                 messages[i]["content"].get<std::string>() + "\n";
  }
  ex.prompt += "<|assistant|>\n";
  ex.response = messages[last_assistant]["content"].get<std::string>();
  return ex;
}

}  // namespace

std::string AlpacaPrompt(const std::string& instruction, const std::string& input) {
  if (input.empty()) {
    return "Below is an instruction that describes a task. Write a response that appropriately "
           "completes the request.\n\n### Instruction:\n" + instruction + "\n\n### Response:\n";
  }
  return "Below is an instruction that describes a task, paired with an input that provides further "
         "context. Write a response that appropriately completes the request.\n\n### Instruction:\n" +
         instruction + "\n\n### Input:\n" + input + "\n\n### Response:\n";
}

std::vector<InstructionExample> ReadInstructionFile(const std::string& path, const ChatTemplate* chat,
                                                    const std::atomic<bool>* stop) {
  std::vector<InstructionExample> out;
  ForEachJsonLine(path, [&](const nlohmann::json& row, int64_t line) {
    if (row.contains("messages")) {
      out.push_back(FromChat(row, path, line, chat));
      return;
    }
    if (!row.contains("instruction")) {
      throw DataError(path, line, "neither an Alpaca row (instruction/input/output) nor a chat row (messages)");
    }
    const std::string instruction = StringField(row, "instruction", path, line);
    const std::string input = row.contains("input") ? StringField(row, "input", path, line) : "";
    out.push_back({AlpacaPrompt(instruction, input), StringField(row, "output", path, line)});
  }, stop);
  if (out.empty()) throw InvalidInput(path + ": no examples");
  return out;
}

}  // namespace sweepd::data
