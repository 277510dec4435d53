// Chat templates of tokenizer_config.json and the assistant turns of a rendered chat (see
// chat_template.h). The variables follow transformers' apply_chat_template: messages,
// add_generation_prompt, tools (none) and the special tokens' texts.
#include "worker/data/chat_template.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace sweepd::data {
namespace {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

// A special token in tokenizer_config.json: a string, or {"content": ...} (AddedToken).
std::string TokenText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

Result<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The template text `choice` selects in the config's chat_template (a string, or a list of
// {name, template}); sets `where` to say which.
Result<std::string> SelectTemplate(const json& config, const std::string& path, const std::string& choice,
                                   std::string& where) {
  const json& t = config.contains("chat_template") ? config["chat_template"] : json();
  std::vector<std::pair<std::string, std::string>> named;
  if (t.is_string()) named.emplace_back("default", t.get<std::string>());
  if (t.is_array()) {
    for (const json& e : t) {
      if (e.is_object() && e.contains("name") && e.contains("template") && e["name"].is_string() &&
          e["template"].is_string()) {
        named.emplace_back(e["name"].get<std::string>(), e["template"].get<std::string>());
      }
    }
  }
  const std::string wanted = choice.empty() ? "default" : choice;
  std::string names;
  for (const auto& [name, text] : named) {
    if (name == wanted) {
      where = path + (named.size() > 1 || !choice.empty() ? " (template '" + name + "')" : "");
      return text;
    }
    names += (names.empty() ? "" : ", ") + name;
  }
  if (named.empty()) {
    return Status::InvalidArgument(path + ": no chat_template; name a Jinja file in model.chat_template");
  }
  return Status::InvalidArgument(path + ": no chat template named '" + wanted + "' (named: " + names +
                                 "); model.chat_template takes one of these or a Jinja file");
}

size_t CommonPrefix(const std::string& a, const std::string& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// Where the content of a message ends in `full`, given `emptied` (the same rendering with that
// content removed): the first byte of the common suffix, never before the common prefix.
size_t ContentEnd(const std::string& full, const std::string& emptied) {
  const size_t prefix = CommonPrefix(full, emptied);
  const size_t limit = std::min(full.size(), emptied.size()) - prefix;
  size_t suffix = 0;
  while (suffix < limit && full[full.size() - 1 - suffix] == emptied[emptied.size() - 1 - suffix]) ++suffix;
  return full.size() - suffix;
}

Result<std::string> Render(const ChatTemplate& chat, const json& messages) {
  json context = chat.variables;
  context["messages"] = messages;
  context["add_generation_prompt"] = false;
  context["tools"] = nullptr;
  return chat.jinja.Render(context);
}

json WithEmptyContent(json messages, size_t i) {
  messages[i]["content"] = "";
  return messages;
}

}  // namespace

Result<ChatTemplate> LoadChatTemplate(const std::string& config_path, const std::string& choice) {
  ChatTemplate chat;
  json config = json::object();
  if (!config_path.empty() && fs::exists(config_path)) {
    std::ifstream in(config_path);
    config = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      return Status::InvalidArgument(config_path + ": not a JSON object");
    }
  }
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    if (config.contains(key)) chat.variables[key] = TokenText(config[key]);
  }
  if (config.contains("added_tokens_decoder") && config["added_tokens_decoder"].is_object()) {
    for (const auto& [id, token] : config["added_tokens_decoder"].items()) {
      const std::string text = TokenText(token);
      if (text.empty()) continue;
      chat.added_tokens.emplace_back(text, std::stoll(id));
      if (token.value("special", false)) chat.special_texts.push_back(text);
    }
    // Longest first, so that a token is never matched as a prefix of a longer one.
    std::stable_sort(chat.added_tokens.begin(), chat.added_tokens.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }
  Result<std::string> source = std::string();
  if (!choice.empty() && fs::is_regular_file(choice)) {
    chat.where = choice;
    source = ReadText(choice);
  } else {
    source = SelectTemplate(config, config_path, choice, chat.where);
  }
  if (!source.ok()) return source.status();
  Result<JinjaTemplate> parsed = JinjaTemplate::Parse(*source, chat.where);
  if (!parsed.ok()) return parsed.status();
  chat.jinja = std::move(*parsed);
  return chat;
}

Result<InstructionExample> RenderChat(const ChatTemplate& chat, const json& messages) {
  Result<std::string> full = Render(chat, messages);
  if (!full.ok()) return full.status();
  InstructionExample ex;
  ex.text = *full;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (m.value("role", "") != "assistant" || m.value("content", "").empty()) continue;
    Result<std::string> emptied = Render(chat, WithEmptyContent(messages, i));
    if (!emptied.ok()) return emptied.status();
    const size_t begin = CommonPrefix(ex.text, *emptied);
    const size_t end = ContentEnd(ex.text, *emptied);
    // The same turn as the last message: the template text that closes it, whatever follows.
    const json upto(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    Result<std::string> last = Render(chat, upto);
    if (!last.ok()) return last.status();
    Result<std::string> last_emptied = Render(chat, WithEmptyContent(upto, i));
    if (!last_emptied.ok()) return last_emptied.status();
    const std::string tail = ex.text.substr(end);
    const std::string last_tail = last->substr(ContentEnd(*last, *last_emptied));
    size_t closing = CommonPrefix(tail, last_tail);
    size_t first_special = std::string::npos;
    for (const std::string& s : chat.special_texts) {
      const size_t at = tail.substr(0, closing).find(s);
      if (at != std::string::npos) first_special = std::min(first_special, at + s.size());
    }
    if (first_special != std::string::npos) closing = first_special;
    if (begin >= end) continue;  // the template does not show this content
    ex.trained.push_back({begin, end + closing});
  }
  if (ex.trained.empty()) {
    return Status::InvalidArgument(chat.where + ": the chat template renders no assistant content of this row");
  }
  return ex;
}

ChatTokens TokenizeChat(const InstructionExample& chat, const ChatTemplate* added, const Tokenizer& tokenizer) {
  ChatTokens out;
  const std::string& text = chat.text;
  auto trained = [&](size_t b, size_t e) {
    for (const ByteSpan& s : chat.trained) {
      if (b < s.end && s.begin < e) return true;
    }
    return false;
  };
  auto encode = [&](size_t from, size_t to) {
    if (to <= from) return;
    for (const TokenOffset& t : tokenizer.EncodeWithOffsets(text.substr(from, to - from))) {
      out.ids.push_back(t.id);
      out.trained.push_back(trained(from + t.begin, from + std::max(t.end, t.begin + 1)));
    }
  };
  size_t plain = 0;
  for (size_t i = 0; i < text.size();) {
    const std::pair<std::string, int64_t>* match = nullptr;
    if (added != nullptr) {
      for (const auto& token : added->added_tokens) {
        if (text.compare(i, token.first.size(), token.first) == 0) {
          match = &token;
          break;
        }
      }
    }
    if (match == nullptr) {
      ++i;
      continue;
    }
    encode(plain, i);
    out.ids.push_back(match->second);
    out.trained.push_back(trained(i, i + match->first.size()));
    i += match->first.size();
    plain = i;
  }
  encode(plain, text.size());
  return out;
}

}  // namespace sweepd::data
