// Sweep specs: the demo spec, grid expansion, budgets, and every kind of bad spec. The
// specs are files under tests/spec/specs/.
#include "spec/sweep_spec.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/budget.h"
#include "common/model_shapes.h"
#include "spec/spec_text.h"

namespace sweepd::spec {
namespace {

using ::testing::HasSubstr;

std::string SpecPath(const std::string& name) {
  return std::string(SWEEPD_SOURCE_DIR) + "/tests/spec/specs/" + name;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string AllProblems(const SpecResult& r) {
  std::string out;
  for (const SpecProblem& p : r.problems) out += FormatProblem(p) + "\n";
  return out;
}

// The problem about `field`, or nullptr.
const SpecProblem* ProblemAt(const SpecResult& r, const std::string& field) {
  for (const SpecProblem& p : r.problems) {
    if (p.field == field) return &p;
  }
  return nullptr;
}

std::vector<const ExpandedJob*> TrainJobs(const SpecResult& r) {
  std::vector<const ExpandedJob*> out;
  for (const ExpandedJob& j : r.sweep.jobs) {
    if (j.config.kind == "train") out.push_back(&j);
  }
  return out;
}

TEST(SweepSpec, DemoSpecExpandsToOneBaseEvalAndFourTrainJobs) {
  SpecResult r = ParseSweepSpecFile(std::string(SWEEPD_SOURCE_DIR) + "/sweeps/demo-cpu.yaml");
  ASSERT_TRUE(r.ok()) << AllProblems(r);
  EXPECT_EQ(r.sweep.name, "demo");
  ASSERT_EQ(r.sweep.jobs.size(), 5u);
  const ExpandedJob& base = r.sweep.jobs.front();
  EXPECT_EQ(base.config.kind, "base_eval");
  EXPECT_TRUE(base.depends_on.empty());
  std::set<std::string> methods, ids = {base.config.job_id};
  for (const ExpandedJob* j : TrainJobs(r)) {
    EXPECT_EQ(j->depends_on, std::vector<std::string>{base.config.job_id});
    EXPECT_EQ(j->config.base_eval_job, base.config.job_id);
    EXPECT_EQ(j->config.sweep, "demo");
    EXPECT_GT(j->trainable_params, 0);
    methods.insert(j->config.adapter.at("method").get<std::string>());
    ids.insert(j->config.job_id);
  }
  EXPECT_EQ(methods.size(), 2u);
  EXPECT_EQ(ids.size(), 5u) << "job ids must be distinct";
}

TEST(SweepSpec, JobIdsAreStableHashesOfTheConfiguration) {
  const std::string path = std::string(SWEEPD_SOURCE_DIR) + "/sweeps/demo-cpu.yaml";
  SpecResult a = ParseSweepSpecFile(path);
  SpecResult b = ParseSweepSpecFile(path);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t i = 0; i < a.sweep.jobs.size(); ++i) {
    const std::string& id = a.sweep.jobs[i].config.job_id;
    EXPECT_EQ(id, b.sweep.jobs[i].config.job_id);
    EXPECT_EQ(id, JobIdFor(a.sweep.jobs[i].config));
    EXPECT_EQ(id.size(), 18u);
    EXPECT_EQ(id.rfind("j-", 0), 0u);
  }
  // The sweep's name is not part of a job's identity: another sweep reuses the jobs.
  std::string text = ReadText(path);
  text.replace(text.find("name: demo"), 10, "name: demo-again");
  SpecResult renamed = ParseSweepSpec(text, "renamed.yaml");
  ASSERT_TRUE(renamed.ok()) << AllProblems(renamed);
  EXPECT_EQ(renamed.sweep.jobs[1].config.job_id, a.sweep.jobs[1].config.job_id);
  // A different seed is a different job.
  EXPECT_NE(a.sweep.jobs[1].config.job_id, a.sweep.jobs[2].config.job_id);
}

TEST(SweepSpec, GridIsTheProductOfAxesTracksAndSeeds) {
  SpecResult r = ParseSweepSpecFile(SpecPath("grid.yaml"));
  ASSERT_TRUE(r.ok()) << AllProblems(r);
  EXPECT_EQ(TrainJobs(r).size(), 2u * 2u * 2u * 3u);
  EXPECT_EQ(r.sweep.jobs.size(), 25u);
  std::set<std::string> combos;
  for (const ExpandedJob* j : TrainJobs(r)) {
    combos.insert(j->config.adapter.dump() + j->config.track.name + std::to_string(j->config.seed));
  }
  EXPECT_EQ(combos.size(), 24u);
  // Track B adapts every linear layer, so it counts more parameters than track A.
  EXPECT_GT(TrainJobs(r).back()->trainable_params, TrainJobs(r).front()->trainable_params);
}

TEST(SweepSpec, GridOverTheLimitIsRejected) {
  SpecLimits limits;
  limits.max_jobs = 10;
  SpecResult r = ParseSweepSpecFile(SpecPath("grid.yaml"), limits);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(AllProblems(r), HasSubstr("25 jobs, over the limit of 10"));
  EXPECT_TRUE(r.sweep.jobs.empty());
}

TEST(SweepSpec, SSetsBothRotationSidesAndLearningRatesGoToTraining) {
  SpecResult r = ParseSweepSpecFile(SpecPath("jora_s.yaml"));
  ASSERT_TRUE(r.ok()) << AllProblems(r);
  ASSERT_EQ(r.sweep.jobs.size(), 1u);  // no eval: no base evaluation
  const JobConfig& c = r.sweep.jobs[0].config;
  EXPECT_EQ(c.adapter.at("S_L"), 8);
  EXPECT_EQ(c.adapter.at("S_R"), 8);
  EXPECT_FALSE(c.adapter.contains("S"));
  EXPECT_FALSE(c.adapter.contains("lr_theta"));
  ASSERT_TRUE(c.train.lr_theta.has_value());
  EXPECT_DOUBLE_EQ(*c.train.lr_theta, 0.05);
  EXPECT_DOUBLE_EQ(*c.train.lr_core, 0.01);
  EXPECT_TRUE(r.sweep.jobs[0].depends_on.empty());
}

TEST(SweepSpec, MatchPicksTheKnobWithinTolerance) {
  SpecResult r = ParseSweepSpecFile(SpecPath("match.yaml"));
  ASSERT_TRUE(r.ok()) << AllProblems(r);
  ASSERT_EQ(r.sweep.jobs.size(), 2u);
  const ExpandedJob& dora = r.sweep.jobs[1];
  ASSERT_TRUE(dora.config.adapter.contains("r"));
  EXPECT_TRUE(dora.budget_enforced);
  EXPECT_EQ(dora.reference_params, r.sweep.jobs[0].trainable_params);
  // Recount independently: the chosen rank's count is within 5% of the reference.
  auto shape = LoadModelShape("synthetic:tiny");
  ASSERT_TRUE(shape.ok());
  auto layers = SelectTrack(*shape, dora.config.track);
  ASSERT_TRUE(layers.ok());
  auto count = CountForLayers(dora.config.adapter, *layers);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, dora.trainable_params);
  EXPECT_TRUE(BudgetSolver(*layers, dora.reference_params, 0.05).WithinTolerance(*count));
}

TEST(SweepSpec, ConfigurationOutsideTheBudgetIsAProblemWithItsCounts) {
  SpecResult r = ParseSweepSpecFile(SpecPath("over_budget.yaml"));
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.problems.size(), 1u) << AllProblems(r);
  const SpecProblem& p = r.problems[0];
  EXPECT_EQ(p.field, "methods[1]");
  EXPECT_EQ(p.line, 9);
  EXPECT_THAT(p.message, HasSubstr("trainable parameters"));
  EXPECT_THAT(p.message, HasSubstr("the reference"));
  EXPECT_THAT(p.message, HasSubstr("match: r"));
  EXPECT_TRUE(r.sweep.jobs.empty());
}

TEST(SweepSpec, ReportedBudgetsAreCountedButNotEnforced) {
  SpecResult r = ParseSweepSpecFile(SpecPath("report_budget.yaml"));
  ASSERT_TRUE(r.ok()) << AllProblems(r);
  ASSERT_EQ(r.sweep.jobs.size(), 4u);
  for (const ExpandedJob& j : r.sweep.jobs) {
    EXPECT_FALSE(j.budget_enforced) << j.config.adapter.dump();
    EXPECT_GT(j.trainable_params, 0);
    EXPECT_GT(j.reference_params, 0);
  }
}

TEST(SweepSpec, EveryProblemIsReportedWithItsFieldAndLine) {
  SpecResult r = ParseSweepSpecFile(SpecPath("many_problems.yaml"));
  ASSERT_FALSE(r.ok());
  const std::string all = AllProblems(r);
  struct Expected {
    const char* field;
    int line;
    const char* text;
  };
  const Expected expected[] = {
      {"name", 2, "not a valid sweep name"},
      {"base.dtype", 3, "float8"},
      {"tracks[1]", 4, "unknown track 'C'"},
      {"train.steps", 5, "at least 1"},
      {"train.lr", 5, "must be a number"},
      {"train.warmup", 5, "unknown key"},
      {"eval[0].role", 7, "stabilty"},
      {"seeds", 8, "non-empty list"},
      {"methods[0].r", 10, "empty list"},
      {"methods[1].rank", 11, "unknown option of lora"},
      {"methods[2].method", 12, "unknown method 'lorra'"},
      {"methods[3].coft", 13, "true or false"},
      {"methods[4].S", 14, "jora only"},
      {"colour", 15, "unknown key"},
  };
  for (const Expected& e : expected) {
    const SpecProblem* p = ProblemAt(r, e.field);
    ASSERT_NE(p, nullptr) << "no problem for " << e.field << " in:\n" << all;
    EXPECT_EQ(p->line, e.line) << FormatProblem(*p);
    EXPECT_GT(p->column, 0) << FormatProblem(*p);
    EXPECT_THAT(p->message, HasSubstr(e.text)) << FormatProblem(*p);
  }
  EXPECT_TRUE(r.sweep.jobs.empty());
}

TEST(SweepSpec, EvalSettingsReachEveryJobWithTheHarnessDefaults) {
  SpecResult r = ParseSweepSpecFile(SpecPath("eval_settings.yaml"));
  ASSERT_TRUE(r.ok()) << AllProblems(r);
  for (const auto& job : r.sweep.jobs) {
    ASSERT_EQ(job.config.eval.size(), 3u);
    const EvalSpec& arc = job.config.eval[0];
    EXPECT_EQ(arc.num_fewshot, 25);
    EXPECT_EQ(arc.metric, "acc_norm");
    EXPECT_FALSE(arc.add_bos);
    const EvalSpec& gsm = job.config.eval[1];
    EXPECT_EQ(gsm.num_fewshot, 5);  // the harness's default
    EXPECT_EQ(gsm.max_gen_toks, 256);
    EXPECT_EQ(gsm.until, (std::vector<std::string>{"Question:", "\n\n"}));
    EXPECT_EQ(gsm.metric, "flexible");
    const EvalSpec& mc = job.config.eval[2];
    EXPECT_EQ(mc.num_fewshot, 0);  // synthetic data: zero-shot, with BOS as pre-trained
    EXPECT_TRUE(mc.add_bos);
    // The job JSON reads back to the same settings.
    auto back = JobConfigFromJson(ToJson(job.config));
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(CanonicalJobJson(*back), CanonicalJobJson(job.config));
  }
}

TEST(SweepSpec, YamlSyntaxErrorHasItsLine) {
  SpecResult r = ParseSweepSpecFile(SpecPath("yaml_syntax.yaml"));
  ASSERT_EQ(r.problems.size(), 1u) << AllProblems(r);
  EXPECT_THAT(r.problems[0].message, HasSubstr("YAML syntax"));
  EXPECT_GE(r.problems[0].line, 2);
  EXPECT_THAT(FormatProblem(r.problems[0]), HasSubstr("yaml_syntax.yaml:"));
}

TEST(SweepSpec, UnknownModelPointsAtBaseModel) {
  SpecResult r = ParseSweepSpecFile(SpecPath("unknown_model.yaml"));
  ASSERT_EQ(r.problems.size(), 1u) << AllProblems(r);
  EXPECT_EQ(r.problems[0].field, "base.model");
  EXPECT_EQ(r.problems[0].line, 2);
  EXPECT_THAT(r.problems[0].message, HasSubstr("synthetic:tiny"));
}

TEST(SweepSpec, MissingFileIsOneProblem) {
  SpecResult r = ParseSweepSpecFile(SpecPath("does-not-exist.yaml"));
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_THAT(r.problems[0].message, HasSubstr("cannot read"));
}

// The seed design's specs in sweeps/ name a real checkpoint folder; they are checked here
// against the public Llama-2-7B config.json (tests/spec/models), budgets included.
TEST(SweepSpec, EverySpecInSweepsIsValid) {
  const std::string dir = std::string(SWEEPD_SOURCE_DIR) + "/sweeps";
  const std::string model = std::string(SWEEPD_SOURCE_DIR) + "/tests/spec/models/llama-2-7b";
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    std::string text = ReadText(entry.path().string());
    const std::string placeholder = "/models/Llama-2-7b-hf";
    if (size_t at = text.find(placeholder); at != std::string::npos) text.replace(at, placeholder.size(), model);
    SpecResult r = ParseSweepSpec(text, entry.path().string());
    EXPECT_TRUE(r.ok()) << AllProblems(r);
    EXPECT_FALSE(r.sweep.jobs.empty()) << entry.path();
    ++checked;
  }
  EXPECT_GE(checked, 6);
}

TEST(SweepSpec, FormatProblemNamesFileLineColumnAndField) {
  SpecProblem p{"a.yaml", 3, 7, "methods[2].r", "must be an integer"};
  EXPECT_EQ(FormatProblem(p), "a.yaml:3:7: methods[2].r: must be an integer");
}

TEST(SweepSpec, IntegersOutOfRangeAreProblemsNotTruncated) {
  SpecResult r = ParseSweepSpecFile(SpecPath("out_of_range_integers.yaml"));
  EXPECT_FALSE(r.ok());
  const SpecProblem* priority = ProblemAt(r, "priority");
  ASSERT_NE(priority, nullptr) << AllProblems(r);
  EXPECT_THAT(priority->message, HasSubstr("must be at most"));
  const SpecProblem* attempts = ProblemAt(r, "max_attempts");
  ASSERT_NE(attempts, nullptr) << AllProblems(r);
  EXPECT_THAT(attempts->message, HasSubstr("must be at most"));
}

TEST(SweepSpec, GpusPerJobReachesTrainJobsAndIsRangeChecked) {
  const std::string spec = ReadText(SpecPath("../../server/specs/cuda-2gpu.yaml"));
  SpecResult r = ParseSweepSpec(spec, "cuda-2gpu.yaml");
  ASSERT_TRUE(r.ok()) << AllProblems(r);
  int train_jobs = 0;
  for (const ExpandedJob& job : r.sweep.jobs) {
    if (job.config.kind != "train") continue;
    ++train_jobs;
    EXPECT_EQ(job.config.devices, 2);
    EXPECT_EQ(ToJson(job.config)["devices"], 2);
  }
  EXPECT_EQ(train_jobs, 1);
  // The device count is not part of a job's identity: the same job on one device.
  std::string one = spec;
  one.replace(one.find("gpus_per_job: 2"), 15, "gpus_per_job: 1");
  SpecResult r1 = ParseSweepSpec(one, "one.yaml");
  ASSERT_TRUE(r1.ok()) << AllProblems(r1);
  EXPECT_EQ(r1.sweep.jobs.back().config.job_id, r.sweep.jobs.back().config.job_id);
  EXPECT_FALSE(ToJson(r1.sweep.jobs.back().config).contains("devices"));
  for (const char* bad : {"gpus_per_job: 0", "gpus_per_job: 65", "gpus_per_job: two"}) {
    std::string text = spec;
    text.replace(text.find("gpus_per_job: 2"), 15, bad);
    SpecResult b = ParseSweepSpec(text, "bad.yaml");
    EXPECT_FALSE(b.ok()) << bad;
    EXPECT_NE(ProblemAt(b, "resources.gpus_per_job"), nullptr) << bad << ": " << AllProblems(b);
  }
}

// A sweep name of tens of thousands of characters once crashed the parser (std::regex
// recursion); it is refused by its length, and the problem quotes only its start.
TEST(SweepSpec, VeryLongNameIsRefusedByLengthWithABoundedExcerpt) {
  std::string text = ReadText(std::string(SWEEPD_SOURCE_DIR) + "/sweeps/demo-cpu.yaml");
  const std::string long_name(40000, 'a');
  const size_t at = text.find("\nname: ");
  ASSERT_NE(at, std::string::npos);
  text.replace(at + 7, text.find('\n', at + 1) - (at + 7), long_name);
  SpecResult r = ParseSweepSpec(text, "long-name.yaml");
  const SpecProblem* name = ProblemAt(r, "name");
  ASSERT_NE(name, nullptr) << AllProblems(r).substr(0, 500);
  EXPECT_LT(name->message.size(), 300u);
  EXPECT_THAT(name->message, HasSubstr("40000 bytes"));
}

// Every byte sequence that is not UTF-8 (RFC 3629) is refused at its line and column,
// whatever it follows; valid multi-byte characters pass.
TEST(SweepSpec, EveryKindOfInvalidUtf8IsOneProblemAtItsPosition) {
  const std::string demo = ReadText(std::string(SWEEPD_SOURCE_DIR) + "/sweeps/demo-cpu.yaml");
  const std::string comment = "# r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n";  // é, €, an emoji
  EXPECT_TRUE(ParseSweepSpec(demo + comment, "ok.yaml").ok()) << AllProblems(ParseSweepSpec(demo + comment, "ok.yaml"));
  int lines = 1;
  for (char c : demo) lines += c == '\n';
  for (const char* bad : {"\xf9", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"}) {
    SpecResult r = ParseSweepSpec(demo + "# ab" + bad + "\n", "bad.yaml");
    ASSERT_EQ(r.problems.size(), 1u) << AllProblems(r);
    EXPECT_EQ(r.problems[0].line, lines);
    EXPECT_EQ(r.problems[0].column, 5);
    EXPECT_THAT(r.problems[0].message, HasSubstr("not UTF-8"));
  }
}

TEST(SweepSpec, ProblemsBeyondTheCapAreCountedInOneLastProblem) {
  std::string text = ReadText(std::string(SWEEPD_SOURCE_DIR) + "/sweeps/demo-cpu.yaml");
  const size_t extra = kMaxReportedProblems * 3;
  for (size_t i = 0; i < extra; ++i) text += "unknown_" + std::to_string(i) + ": 1\n";
  SpecResult r = ParseSweepSpec(text, "many.yaml");
  ASSERT_EQ(r.problems.size(), kMaxReportedProblems + 1);
  EXPECT_EQ(r.problems.back().message.rfind("and " + std::to_string(extra - kMaxReportedProblems) + " more problems", 0), 0u)
      << r.problems.back().message;
  EXPECT_EQ(r.problems.front().field, "unknown_0");
  // The count, too, points at a line of the spec: where the problems it counts begin.
  EXPECT_GT(r.problems.back().line, 0);
  EXPECT_GE(r.problems.back().line, r.problems[kMaxReportedProblems - 1].line);
  EXPECT_FALSE(r.problems.back().field.empty());
}

}  // namespace
}  // namespace sweepd::spec
