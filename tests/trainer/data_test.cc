// Training data: Alpaca and chat rows, loss masks, packing, and file:line errors.
#include <gtest/gtest.h>

#include "worker/data/instruction_data.h"
#include "worker/data/jsonl.h"
#include "worker/data/packing.h"
#include "worker/data/synthetic_tasks.h"

namespace sweepd::data {
namespace {

const std::string kData = std::string(SWEEPD_SOURCE_DIR) + "/tests/trainer/data/";

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(InstructionData, ReadsAlpacaRowsIntoTheAlpacaTemplate) {
  auto rows = ReadInstructionFile(kData + "alpaca.jsonl");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].response, "5");
  EXPECT_NE(rows[0].prompt.find("### Instruction:\nAdd 2 and 3."), std::string::npos);
  EXPECT_EQ(rows[1].prompt, AlpacaPrompt("Say hi.", ""));
}

TEST(InstructionData, WrongFieldTypeNamesFileLineAndField) {
  const std::string e = ErrorOf([] { ReadInstructionFile(kData + "alpaca_bad_type.jsonl"); });
  EXPECT_NE(e.find("alpaca_bad_type.jsonl:3: field 'output' must be a string"), std::string::npos) << e;
}

TEST(InstructionData, BrokenJsonNamesFileAndLine) {
  const std::string e = ErrorOf([] { ReadInstructionFile(kData + "alpaca_bad_json.jsonl"); });
  EXPECT_NE(e.find("alpaca_bad_json.jsonl:3: not valid JSON"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

TEST(InstructionData, ChatRowWithoutAssistantIsRejected) {
  const std::string e = ErrorOf([] { ReadInstructionFile(kData + "chat_no_assistant.jsonl"); });
  EXPECT_NE(e.find("chat_no_assistant.jsonl:2: no assistant message"), std::string::npos) << e;
}

TEST(Packing, OnlyResponseTokensCarryTargets) {
  ByteTokenizer tok;
  auto ex = TokenizeExample({"Q:", " 42"}, tok);
  Packer packer({ex}, 0, ByteTokenizer::kPad);
  PackedRows rows = packer.NextRows(1, 7);  // exactly one example
  // BOS Q : ␠ 4 2 EOS: the targets are ␠ 4 2 EOS, predicted from ':', '␠', '4', '2'.
  EXPECT_EQ(rows.target_tokens, 4);
  auto targets = rows.targets[0];
  EXPECT_EQ(targets[0].item<int64_t>(), -100);
  EXPECT_EQ(targets[1].item<int64_t>(), -100);
  EXPECT_EQ(targets[2].item<int64_t>(), ' ');
  EXPECT_EQ(targets[5].item<int64_t>(), ByteTokenizer::kEos);
  EXPECT_EQ(targets[6].item<int64_t>(), -100);  // EOS predicts nothing
}

TEST(Packing, AnExampleLongerThanTheRowKeepsItsResponse) {
  ByteTokenizer tok;
  auto ex = TokenizeExample({"a long prompt that does not fit:", " 42"}, tok);
  Packer packer({ex}, 0, ByteTokenizer::kPad);
  PackedRows rows = packer.NextRows(1, 8);
  EXPECT_EQ(rows.truncated_examples, 1);
  // The row holds the last 8 ids, f i t : ␠ 4 2 EOS: every response token is still a target.
  EXPECT_EQ(rows.input_ids[0][7].item<int64_t>(), ByteTokenizer::kEos);
  EXPECT_EQ(rows.input_ids[0][5].item<int64_t>(), '4');
  EXPECT_EQ(rows.target_tokens, 4);  // ' ' '4' '2' EOS
  EXPECT_EQ(rows.targets[0][3].item<int64_t>(), ' ');
}

TEST(Packing, SameSeedAndCursorGiveTheSameRows) {
  ByteTokenizer tok;
  std::vector<TokenizedExample> examples;
  for (const auto& ex : SuccessorExamples(3, 50)) examples.push_back(TokenizeExample(ex, tok));
  Packer a(examples, 9, ByteTokenizer::kPad), b(examples, 9, ByteTokenizer::kPad);
  a.NextRows(4, 128);
  const int64_t cursor = a.cursor();
  auto next = a.NextRows(4, 128);
  b.set_cursor(cursor);
  EXPECT_TRUE(torch::equal(b.NextRows(4, 128).input_ids, next.input_ids));
}

}  // namespace
}  // namespace sweepd::data
