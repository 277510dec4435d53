// Tokenizers: SentencePiece against the ids the sentencepiece Python package produced, and
// the byte-level tokenizer's round trip.
#include "worker/data/tokenizer.h"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sweepd::data {
namespace {

const std::string kTokenizer = std::string(SWEEPD_FIXTURES) + "/tokenizer/";

TEST(SentencePieceTokenizer, EncodesEveryReferenceTextToItsIds) {
  auto tokenizer = LoadSentencePieceTokenizer(kTokenizer + "tiny.model");
  std::ifstream in(kTokenizer + "reference.json");
  const auto reference = nlohmann::json::parse(in);
  ASSERT_FALSE(reference.empty());
  for (const auto& row : reference) {
    const std::string text = row.at("text").get<std::string>();
    EXPECT_EQ(tokenizer->Encode(text), row.at("ids").get<std::vector<int64_t>>()) << text;
  }
  EXPECT_EQ(tokenizer->VocabSize(), 300);
}

TEST(SentencePieceTokenizer, MissingFileNamesTheFile) {
  try {
    LoadSentencePieceTokenizer(kTokenizer + "absent.model");
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("absent.model"), std::string::npos) << e.what();
  }
}

TEST(ByteTokenizer, RoundTripsBytesAndKeepsSpecialsApart) {
  ByteTokenizer tokenizer;
  const std::string text = "Question: 7 + 5 = 12\n#### 12 \xc3\xbc";
  const auto ids = tokenizer.Encode(text);
  EXPECT_EQ(ids.size(), text.size());
  EXPECT_EQ(tokenizer.Decode(ids), text);
  for (int64_t id : ids) EXPECT_LT(id, 256);
  EXPECT_EQ(tokenizer.Decode({ByteTokenizer::kBos, 'a', ByteTokenizer::kEos}), "a");
}

}  // namespace
}  // namespace sweepd::data
