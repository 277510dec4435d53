// Chat rows rendered with the model's own chat template (tokenizer_config.json's
// chat_template, as transformers' apply_chat_template renders it), and the byte ranges of the
// assistant turns, which alone carry the loss; then tokens with their loss mask.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "worker/data/examples.h"
#include "worker/data/jinja_template.h"
#include "worker/data/tokenizer.h"

namespace sweepd::data {

struct ChatTemplate {
  std::string where;                     // the template's file (and name), for messages
  JinjaTemplate jinja;
  nlohmann::ordered_json variables;      // bos_token, eos_token, ...: what the template may read
  // Added tokens (text, id) of tokenizer_config.json: matched in the rendered text before the
  // tokenizer sees it, as Hugging Face tokenizers match them. `special` ones end an assistant turn.
  std::vector<std::pair<std::string, int64_t>> added_tokens;
  std::vector<std::string> special_texts;
};

// The template for a model whose tokenizer_config.json is `config_path` (may be "" or absent
// when `choice` is a file). `choice`: "" for the file's default template, the name of one of
// its named templates ({name, template} list), or the path of a Jinja file.
Result<ChatTemplate> LoadChatTemplate(const std::string& config_path, const std::string& choice);

// Renders `messages` (a list of {role, content}) and finds each assistant turn: the text that
// changes when its content is emptied, plus the template text after it up to and including the
// first special token (the end of the turn), as far as that text is the same whether the
// conversation ends there or goes on.
Result<InstructionExample> RenderChat(const ChatTemplate& chat, const nlohmann::ordered_json& messages);

// Tokens of a rendered chat: the added tokens by their ids, the text between them by
// `tokenizer`; a token is trained when any of its bytes lies in a trained range.
struct ChatTokens {
  std::vector<int64_t> ids;
  std::vector<bool> trained;
};
ChatTokens TokenizeChat(const InstructionExample& chat, const ChatTemplate* added, const Tokenizer& tokenizer);

}  // namespace sweepd::data
