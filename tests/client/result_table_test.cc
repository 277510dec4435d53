// The table model: sample standard deviations, grouping by configuration minus seed,
// filters, labels and best marks.
#include "client/result_table.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "client/progress_view.h"
#include "client/table_columns.h"
#include "common/eval_settings.h"
#include "spec/sweep_spec.h"

namespace sweepd::client {
namespace {

using nlohmann::json;

ResultRecord Job(const std::string& id, int r, int seed, double score) {
  ResultRecord rec;
  rec.job_id = id;
  rec.config = {{"kind", "train"}, {"seed", seed}, {"adapter", {{"method", "lora"}, {"r", r}}},
                {"track", {{"name", "A"}}}};
  rec.result = {{"kind", "train"}, {"scores", {{"gsm8k", score}}}, {"final_loss", 1.0}};
  return rec;
}

TEST(Summarize, UsesTheSampleStandardDeviation) {
  Stat s = Summarize({1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_NEAR(s.std, 1.2909944487358056, 1e-12);  // sqrt(5/3), n - 1 in the denominator
  EXPECT_EQ(s.n, 4);
  EXPECT_EQ(Summarize({7}).std, 0);
}

TEST(BuildTable, GroupsSeedsOfOneConfigurationIntoOneRow) {
  std::vector<ResultRecord> records = {Job("a", 8, 0, 10), Job("b", 8, 1, 14), Job("c", 16, 0, 20)};
  TableOptions o;
  o.columns = {"score_gsm8k"};
  auto t = BuildTable(records, o);
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->rows.size(), 2u);
  EXPECT_EQ(t->rows[0][0].text, "LoRA(r=8)");
  EXPECT_EQ(t->rows[0][2].stat->mean, 12);
  EXPECT_EQ(t->rows[0][2].stat->n, 2);
  EXPECT_FALSE(t->rows[0][2].best);
  EXPECT_TRUE(t->rows[1][2].best);
}

TEST(BuildTable, FiltersAndUnknownColumns) {
  std::vector<ResultRecord> records = {Job("a", 8, 0, 10), Job("b", 16, 0, 20)};
  TableOptions o;
  o.filters = {*ParseFilter("adapter.r=16")};
  auto t = BuildTable(records, o);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->rows.size(), 1u);
  o.columns = {"no_such"};
  auto bad = BuildTable(records, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("score_gsm8k"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(ParseFilter("=x").ok());
  o.kind = "nope";
  EXPECT_FALSE(BuildTable(records, o).ok());
}

// The job configurations of a real spec, with a result keyed as the trainer keys scores.
TEST(BuildTable, ColumnsNameTheMetricAndTheShotsTheSpecAsked) {
  const auto spec = spec::ParseSweepSpecFile(std::string(SWEEPD_SOURCE_DIR) +
                                             "/tests/client/fixtures/arc_acc_norm_25shot.yaml");
  ASSERT_TRUE(spec.problems.empty()) << spec.problems[0].message;
  std::vector<ResultRecord> records;
  for (const auto& job : spec.sweep.jobs) {
    if (job.config.kind != "train") continue;
    ResultRecord rec;
    rec.job_id = job.config.job_id;
    rec.config = ToJson(job.config);
    json scores, base;
    for (const EvalSpec& e : job.config.eval) {
      scores[ScoreName(e)] = 40.0;
      base[ScoreName(e)] = 30.0;
    }
    rec.result = {{"kind", "train"}, {"scores", scores}, {"base_scores", base}, {"final_loss", 1.0}};
    records.push_back(rec);
  }
  ASSERT_EQ(records.size(), 1u);
  auto t = BuildTable(records, TableOptions{});
  ASSERT_TRUE(t.ok()) << t.status().message();
  std::vector<std::string> headers;
  for (const auto& c : t->columns) headers.push_back(c.header);
  EXPECT_NE(std::find(headers.begin(), headers.end(), "ARC-C acc_norm 25-shot Δ"), headers.end())
      << ::testing::PrintToString(headers);
  EXPECT_NE(std::find(headers.begin(), headers.end(), "GSM8K EM strict 5-shot Δ"), headers.end())
      << ::testing::PrintToString(headers);
}

TEST(TaskDisplayName, SyntheticTasksAndMetricsAreNamed) {
  EXPECT_EQ(TaskDisplayName("synthetic-mc.acc"), "synthetic-mc acc");
  EXPECT_EQ(TaskDisplayName("synthetic-arith.exact_match.strict"), "synthetic-arith EM strict");
  EXPECT_EQ(TaskDisplayName("gsm8k"), "GSM8K");  // results written before scores named their metric
}

TEST(ProgressView, PlainModeWritesOneLinePerChange) {
  std::ostringstream out;
  ProgressView view(out, /*redraw=*/false);
  SweepProgress p;
  p.summary.name = "s";
  p.summary.total_jobs = 4;
  p.summary.submitted_ms = 1000;
  p.summary.counts = {{"queued", 4}};
  view.Show(p, 2000);
  view.Show(p, 3000);  // nothing changed: no line
  p.summary.counts = {{"queued", 2}, {"succeeded", 2}};
  view.Show(p, 11000);
  EXPECT_EQ(out.str(),
            "1970-01-01T00:00:02Z s 0/4 done (0%)  queued 4\n"
            "1970-01-01T00:00:11Z s 2/4 done (50%)  queued 2  succeeded 2  eta 10s\n");
  EXPECT_EQ(ProgressView::Bar(1, 4, 8), "[##------]");
  EXPECT_EQ(ProgressView::Duration(3725), "1h02m");
}

}  // namespace
}  // namespace sweepd::client

namespace sweepd::client {
namespace {

TEST(BuildTable, RankTableNamesRowsByRotationRank) {
  std::vector<ResultRecord> records;
  for (int rp : {2, 4}) {
    for (int seed : {0, 1}) {
      ResultRecord rec;
      rec.job_id = "sora-" + std::to_string(rp) + "-" + std::to_string(seed);
      rec.config = {{"kind", "train"}, {"seed", seed}, {"adapter", {{"method", "sora"}, {"r", 8}, {"r_p", rp}}}};
      rec.result = {{"scores", {{"gsm8k", 10.0 * rp + seed}}}, {"trainable_params", 100 * rp}};
      records.push_back(rec);
    }
  }
  TableOptions o;
  o.kind = "rank";
  auto t = BuildTable(records, o);
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->rows.size(), 2u);
  EXPECT_EQ(t->columns[0].header, "r_p");
  EXPECT_EQ(t->rows[0][0].text, "2");
  EXPECT_EQ(t->rows[1][0].text, "4");
  // r_p, n, params, GSM8K ft, ...
  EXPECT_EQ(t->columns[3].id, "score_gsm8k");
  EXPECT_DOUBLE_EQ(t->rows[1][3].stat->mean, 40.5);
  EXPECT_TRUE(t->rows[1][3].best);
}

}  // namespace
}  // namespace sweepd::client

namespace sweepd::client {
namespace {

TEST(BuildTable, SweepAxisSReadsJorasS_L) {
  std::vector<ResultRecord> records;
  for (int s : {32, 64}) {
    ResultRecord rec;
    rec.job_id = "jora-" + std::to_string(s);
    rec.config = {{"kind", "train"}, {"seed", 0}, {"adapter", {{"method", "jora"}, {"S_L", s}, {"S_R", s}, {"k", 8}}}};
    rec.result = {{"tradeoff", s / 10.0}};
    records.push_back(rec);
  }
  TableOptions o;
  o.kind = "sweep";
  o.axes = {"S", "k"};
  auto t = BuildTable(records, o);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->columns[0].header, "S");
  EXPECT_EQ(t->rows[1][0].text, "64");
  EXPECT_EQ(t->rows[1][1].text, "8");
}

}  // namespace
}  // namespace sweepd::client
