// `output_dir` and `merge:` in a spec: one merge job after every train job, depending on it;
// train jobs keep their identity (output_dir is a path, not part of it); every bad value is a
// problem naming its field and line; merge jobs' configurations round-trip through JSON.
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/job_config.h"
#include "spec/sweep_spec.h"

namespace sweepd::spec {
namespace {

using ::testing::HasSubstr;

const std::string kModel = std::string(SWEEPD_FIXTURES) + "/models/tiny-llama";
const std::string kTokenizer = std::string(SWEEPD_FIXTURES) + "/tokenizer/tiny.model";

std::string Spec(const std::string& extra, const std::string& model = kModel) {
  return "name: merged\n"
         "base: {model: " + model + ", tokenizer: " + kTokenizer + "}\n"
         "train: {steps: 2, seq_len: 32, tokens_per_update: 64, micro_batch: 2}\n"
         "seeds: [0, 1]\n"
         "methods:\n"
         "  - {method: lora, r: [4, 8]}\n" + extra;
}

std::string Problems(const SpecResult& r) {
  std::string out;
  for (const SpecProblem& p : r.problems) out += FormatProblem(p) + "\n";
  return out;
}

TEST(MergeSpec, EveryTrainJobGetsOneMergeJobThatDependsOnIt) {
  const SpecResult r = ParseSweepSpec(Spec("output_dir: /srv/out\nmerge: {dtype: bfloat16, max_shard_size: 2GB}\n"),
                                      "merged.yaml");
  ASSERT_TRUE(r.ok()) << Problems(r);
  std::vector<const ExpandedJob*> train, merge;
  for (const ExpandedJob& j : r.sweep.jobs) (j.config.kind == "merge" ? merge : train).push_back(&j);
  ASSERT_EQ(train.size(), 4u);
  ASSERT_EQ(merge.size(), 4u);
  for (size_t i = 0; i < train.size(); ++i) {
    EXPECT_EQ(train[i]->config.output_dir, "/srv/out");
    const JobConfig& m = merge[i]->config;
    EXPECT_EQ(m.merge.from_job, train[i]->config.job_id);
    EXPECT_EQ(merge[i]->depends_on, std::vector<std::string>{train[i]->config.job_id});
    EXPECT_EQ(m.merge.dtype, "bfloat16");
    EXPECT_EQ(m.merge.max_shard_size, "2GB");
    EXPECT_EQ(m.output_dir, "/srv/out");
    EXPECT_EQ(m.model.source, kModel);
    EXPECT_EQ(m.seed, train[i]->config.seed);
    EXPECT_FALSE(merge[i]->budget_enforced);
    // Its configuration survives JSON as a worker reads it.
    auto back = JobConfigFromJson(ToJson(m));
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(CanonicalJobJson(*back), CanonicalJobJson(m));
    EXPECT_EQ(back->merge.from_job, m.merge.from_job);
  }
  // Four different merges (each names its own train job).
  std::set<std::string> ids;
  for (const ExpandedJob* j : merge) ids.insert(j->config.job_id);
  EXPECT_EQ(ids.size(), 4u);
}

TEST(MergeSpec, OutputDirIsNotPartOfATrainJobsIdentity) {
  const SpecResult plain = ParseSweepSpec(Spec(""), "plain.yaml");
  const SpecResult with = ParseSweepSpec(Spec("output_dir: /srv/out\nmerge: true\n"), "with.yaml");
  ASSERT_TRUE(plain.ok()) << Problems(plain);
  ASSERT_TRUE(with.ok()) << Problems(with);
  ASSERT_EQ(with.sweep.jobs.size(), 2 * plain.sweep.jobs.size());
  for (size_t i = 0; i < plain.sweep.jobs.size(); ++i) {
    EXPECT_EQ(with.sweep.jobs[i].config.job_id, plain.sweep.jobs[i].config.job_id);
  }
  EXPECT_EQ(with.sweep.jobs.back().config.merge.dtype, "");  // merge: true keeps the base's dtype
}

TEST(MergeSpec, EveryBadValueIsAProblemNamingItsField) {
  struct Case {
    std::string extra, model, field, message;
  };
  const std::vector<Case> cases = {
      {"merge: {dtype: bfloat16}\n", kModel, "merge", "needs output_dir"},
      {"output_dir: out\nmerge: true\n", kModel, "output_dir", "must be an absolute folder"},
      {"output_dir: /srv/out\nmerge: true\n", "synthetic:tiny", "merge", "needs a Hugging Face model folder"},
      {"output_dir: /srv/out\nmerge: {dtype: int8}\n", kModel, "merge.dtype", "must be one of float32, bfloat16, float16"},
      {"output_dir: /srv/out\nmerge: {max_shard_size: 5 parsecs}\n", kModel, "merge.max_shard_size", "is not a size"},
      {"output_dir: /srv/out\nmerge: {shards: 2}\n", kModel, "merge.shards", "unknown key"},
  };
  for (const Case& c : cases) {
    const SpecResult r = ParseSweepSpec(Spec(c.extra, c.model), "bad.yaml");
    ASSERT_FALSE(r.ok()) << c.extra;
    bool found = false;
    for (const SpecProblem& p : r.problems) {
      if (p.field == c.field && p.message.find(c.message) != std::string::npos) {
        found = true;
        EXPECT_GT(p.line, 0) << FormatProblem(p);
      }
    }
    EXPECT_TRUE(found) << c.extra << "\n" << Problems(r);
  }
}

TEST(MergeSpec, JobFilesWithABadMergeAreRefusedByField) {
  JobConfig c;
  c.kind = "merge";
  c.job_id = "j-1";
  c.output_dir = "/srv/out";
  c.merge.from_job = "j-0";
  ASSERT_TRUE(JobConfigFromJson(ToJson(c)).ok());
  using Edit = std::function<void(nlohmann::json&)>;
  const std::vector<std::pair<Edit, std::string>> cases = {
      {[](nlohmann::json& j) { j["merge"].erase("from_job"); }, "merge.from_job"},
      {[](nlohmann::json& j) { j.erase("output_dir"); }, "field 'output_dir' is missing"},
      {[](nlohmann::json& j) { j["merge"]["from_job"] = "../../etc"; }, "not a job id"},
      {[](nlohmann::json& j) { j["output_dir"] = "relative/out"; }, "must be an absolute folder"},
      {[](nlohmann::json& j) { j["merge"]["max_shard_size"] = "lots"; }, "merge.max_shard_size"},
      {[](nlohmann::json& j) { j["kind"] = "distill"; }, "train, base_eval or merge"},
  };
  for (const auto& [edit, text] : cases) {
    nlohmann::json j = ToJson(c);
    edit(j);
    auto r = JobConfigFromJson(j);
    ASSERT_FALSE(r.ok()) << j.dump();
    EXPECT_THAT(r.status().message(), HasSubstr(text));
  }
}

}  // namespace
}  // namespace sweepd::spec
