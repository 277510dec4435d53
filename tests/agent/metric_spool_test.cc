#include "worker/agent/metric_spool.h"

#include <gtest/gtest.h>

#include "tests/agent/trainer_script.h"

namespace sweepd::agent {
namespace {

TEST(MetricSpoolTest, NumbersLinesFromOneAndReadsThemBack) {
  const auto dir = testing::MakeTempDir();
  auto spool = MetricSpool::Create(dir / "a.jsonl");
  ASSERT_TRUE(spool.ok());
  int notified = 0;
  (*spool)->set_listener([&] { ++notified; });
  const std::vector<std::string> lines = {R"({"type":"start"})", R"({"type":"step","step":1})",
                                          R"({"type":"note","text":"quote \" and é"})"};
  for (size_t i = 0; i < lines.size(); ++i) {
    auto seq = (*spool)->Append(lines[i]);
    ASSERT_TRUE(seq.ok());
    EXPECT_EQ(*seq, static_cast<int64_t>(i + 1));
  }
  EXPECT_EQ((*spool)->last_seq(), 3);
  EXPECT_FALSE((*spool)->closed());
  (*spool)->Close();
  EXPECT_TRUE((*spool)->closed());
  EXPECT_EQ(notified, 4);

  const auto tail = (*spool)->ReadFrom(2, 10);
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].seq, 2);
  EXPECT_EQ(tail[0].json, lines[1]);
  EXPECT_EQ(tail[1].json, lines[2]);
  EXPECT_EQ((*spool)->ReadFrom(1, 1).size(), 1u);
  EXPECT_TRUE((*spool)->ReadFrom(4, 10).empty());

  // The file alone is enough to recover every line.
  auto file = ReadSpoolFile(dir / "a.jsonl");
  ASSERT_TRUE(file.ok());
  ASSERT_EQ(file->size(), 3u);
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ((*file)[i].seq, static_cast<int64_t>(i + 1));
    EXPECT_EQ((*file)[i].json, lines[i]);
  }
  std::filesystem::remove_all(dir);
}

TEST(MetricSpoolTest, UnwritableFolderIsAnError) {
  EXPECT_FALSE(MetricSpool::Create("/nonexistent/folder/a.jsonl").ok());
}

}  // namespace
}  // namespace sweepd::agent
