// Tokenizers: SentencePiece against the ids the sentencepiece Python package produced, and
// the byte-level tokenizer's round trip.
#include "worker/data/tokenizer.h"

#include <algorithm>
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

// Offsets: the same ids as Encode, ranges in order, and every byte that is not a space inside
// the range of the token that encodes it (SentencePiece folds a space into the next piece).
TEST(SentencePieceTokenizer, OffsetsCoverTheTextInOrder) {
  auto tokenizer = LoadSentencePieceTokenizer(kTokenizer + "tiny.model");
  std::ifstream in(kTokenizer + "reference.json");
  for (const auto& row : nlohmann::json::parse(in)) {
    const std::string text = row.at("text").get<std::string>();
    const auto tokens = tokenizer->EncodeWithOffsets(text);
    std::vector<int64_t> ids;
    std::vector<bool> covered(text.size(), false);
    size_t last_end = 0;
    for (const TokenOffset& t : tokens) {
      ids.push_back(t.id);
      EXPECT_LE(t.begin, t.end) << text;
      EXPECT_LE(t.end, text.size()) << text;
      EXPECT_GE(t.begin, last_end) << text;
      last_end = std::max(last_end, t.end);
      for (size_t b = t.begin; b < t.end && b < text.size(); ++b) covered[b] = true;
    }
    EXPECT_EQ(ids, tokenizer->Encode(text)) << text;
    for (size_t b = 0; b < text.size(); ++b) {
      if (text[b] != ' ') {
        EXPECT_TRUE(covered[b]) << "byte " << b << " of " << text;
      }
    }
  }
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
  const auto offsets = tokenizer.EncodeWithOffsets(text);
  ASSERT_EQ(offsets.size(), text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    EXPECT_EQ(offsets[i].id, ids[i]);
    EXPECT_EQ(offsets[i].begin, i);
    EXPECT_EQ(offsets[i].end, i + 1);
  }
}

}  // namespace
}  // namespace sweepd::data
