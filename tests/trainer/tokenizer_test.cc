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

// Offsets are ascending and disjoint, and the ranges together cover the whole text.
void ExpectOffsetsTile(const std::vector<TokenOffset>& offsets, const std::string& text) {
  size_t at = 0;
  for (const auto& t : offsets) {
    EXPECT_EQ(t.begin, at) << text;
    EXPECT_LE(t.begin, t.end) << text;
    at = t.end;
  }
  EXPECT_EQ(at, text.size()) << text;
}

std::vector<int64_t> IdsOf(const std::vector<TokenOffset>& offsets) {
  std::vector<int64_t> ids;
  for (const auto& t : offsets) ids.push_back(t.id);
  return ids;
}

TEST(SentencePieceTokenizer, OffsetsGiveTheSameIdsAndTileTheText) {
  auto tokenizer = LoadSentencePieceTokenizer(kTokenizer + "tiny.model");
  std::ifstream in(kTokenizer + "reference.json");
  const auto reference = nlohmann::json::parse(in);
  for (const auto& row : reference) {
    const std::string text = row.at("text").get<std::string>();
    const auto offsets = tokenizer->EncodeWithOffsets(text);
    EXPECT_EQ(IdsOf(offsets), tokenizer->Encode(text)) << text;
    ExpectOffsetsTile(offsets, text);
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

TEST(ByteTokenizer, EveryByteIsItsOwnRange) {
  ByteTokenizer tokenizer;
  const std::string text = "a \xc3\xbc\n";
  const auto offsets = tokenizer.EncodeWithOffsets(text);
  EXPECT_EQ(IdsOf(offsets), tokenizer.Encode(text));
  ExpectOffsetsTile(offsets, text);
  for (const auto& t : offsets) EXPECT_EQ(t.end - t.begin, 1u);
}

TEST(TokenOffsets, SharedBytesGoToTheFirstToken) {
  // Three byte tokens of one character, each given the character's span by the library.
  std::vector<TokenOffset> offsets = {{10, 0, 1}, {11, 1, 4}, {12, 1, 4}, {13, 1, 4}, {14, 4, 9}};
  MakeOffsetsDisjoint(offsets, 6);
  EXPECT_EQ(offsets[1].begin, 1u);
  EXPECT_EQ(offsets[1].end, 4u);
  EXPECT_EQ(offsets[2].begin, 4u);
  EXPECT_EQ(offsets[2].end, 4u);
  EXPECT_EQ(offsets[3].begin, 4u);
  EXPECT_EQ(offsets[4].begin, 4u);
  EXPECT_EQ(offsets[4].end, 6u);
}

}  // namespace
}  // namespace sweepd::data
