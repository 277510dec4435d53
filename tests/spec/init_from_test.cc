// adapter.init_from in a spec: the job's identity is the folder's content (a moved copy is the
// same job, one changed byte another), and a folder that cannot be read or holds another
// adapter is a spec problem naming the folder and the field.
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "spec/adapter_digest.h"
#include "spec/sweep_spec.h"
#include "tests/support/process.h"

namespace sweepd::spec {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

const std::string kFixtures = SWEEPD_FIXTURES;
const std::string kPeftLora = kFixtures + "/models/tiny-llama-lora-qv";

std::string Replace(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values) {
    for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size())) {
      text.replace(at, key.size(), value);
    }
  }
  return text;
}

json FixtureConfig() { return json::parse(sweepd::testing::ReadFile(kPeftLora + "/adapter_config.json")); }

// The spec with the fixture's own method settings and `folder`; `r` other than the fixture's if given.
SpecResult ParseWith(const std::string& folder, const std::string& method = "lora", int64_t r = 0) {
  const json c = FixtureConfig();
  const std::string yaml =
      Replace(sweepd::testing::ReadFile(std::string(SWEEPD_SOURCE_DIR) + "/tests/spec/specs/init_from.yaml"),
              {{"@MODEL@", kFixtures + "/models/tiny-llama"},
               {"@FOLDER@", folder},
               {"@METHOD@", method},
               {"@R@", std::to_string(r > 0 ? r : c["r"].get<int64_t>())},
               {"@ALPHA@", c["lora_alpha"].dump()}});
  return ParseSweepSpec(yaml, "init_from.yaml");
}

std::string AllProblems(const SpecResult& r) {
  std::string out;
  for (const SpecProblem& p : r.problems) out += FormatProblem(p) + "\n";
  return out;
}

const JobConfig& TrainJob(const SpecResult& r) {
  for (const ExpandedJob& j : r.sweep.jobs) {
    if (j.config.kind == "train") return j.config;
  }
  throw std::runtime_error("no train job");
}

std::string CopyOfFixture(const std::string& prefix) {
  const std::string to = sweepd::testing::MakeTempDir(prefix);
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors"}) {
    fs::copy_file(fs::path(kPeftLora) / f, fs::path(to) / f);
  }
  return to;
}

TEST(InitFrom, MovedCopyIsTheSameJobAndTheFolderIsInTheJob) {
  const std::string a = CopyOfFixture("init-from-a-"), b = CopyOfFixture("init-from-b-");
  SpecResult ra = ParseWith(a), rb = ParseWith(b);
  ASSERT_TRUE(ra.ok()) << AllProblems(ra);
  ASSERT_TRUE(rb.ok()) << AllProblems(rb);
  const JobConfig& ja = TrainJob(ra);
  EXPECT_EQ(ja.init_from, a);
  EXPECT_EQ(ja.init_from_sha256.rfind("sha256:", 0), 0u) << ja.init_from_sha256;
  EXPECT_EQ(ja.job_id, TrainJob(rb).job_id);
  EXPECT_EQ(ja.init_from_sha256, TrainJob(rb).init_from_sha256);
  // The folder travels in the job's adapter object, and reads back as it was written.
  const json j = ToJson(ja);
  EXPECT_EQ(j["adapter"]["init_from"], a);
  Result<JobConfig> back = JobConfigFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->init_from, a);
  EXPECT_EQ(back->init_from_sha256, ja.init_from_sha256);
  EXPECT_FALSE(back->adapter.contains("init_from")) << "the method's settings stay its own";
  EXPECT_EQ(JobIdFor(*back), ja.job_id);
  // Without init_from the job is another one.
  JobConfig plain = ja;
  plain.init_from.clear();
  plain.init_from_sha256.clear();
  EXPECT_NE(JobIdFor(plain), ja.job_id);
}

TEST(InitFrom, OneChangedByteIsAnotherJob) {
  const std::string a = CopyOfFixture("init-from-same-"), b = CopyOfFixture("init-from-byte-");
  const std::string file = b + "/adapter_model.safetensors";
  std::string bytes = sweepd::testing::ReadFile(file);
  bytes.back() = static_cast<char>(bytes.back() ^ 1);  // the last byte of the last tensor's data
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  Result<std::string> da = AdapterFolderDigest(a), db = AdapterFolderDigest(b);
  ASSERT_TRUE(da.ok() && db.ok());
  EXPECT_NE(*da, *db);
  SpecResult ra = ParseWith(a), rb = ParseWith(b);
  ASSERT_TRUE(ra.ok() && rb.ok()) << AllProblems(ra) << AllProblems(rb);
  EXPECT_NE(TrainJob(ra).job_id, TrainJob(rb).job_id);
  // The config counts too, but not its layout: the same JSON re-indented is the same adapter.
  const std::string c = CopyOfFixture("init-from-indent-");
  std::ofstream(c + "/adapter_config.json", std::ios::trunc) << FixtureConfig().dump();
  EXPECT_EQ(*AdapterFolderDigest(c), *da);
  json changed = FixtureConfig();
  changed["base_model_name_or_path"] = "another/model";
  std::ofstream(c + "/adapter_config.json", std::ios::trunc) << changed.dump(2);
  EXPECT_NE(*AdapterFolderDigest(c), *da);
}

TEST(InitFrom, FolderOfOtherSettingsIsASpecProblemNamingBothValues) {
  const int64_t r = FixtureConfig()["r"].get<int64_t>();
  SpecResult other_r = ParseWith(kPeftLora, "lora", 2 * r);
  ASSERT_FALSE(other_r.ok());
  EXPECT_THAT(AllProblems(other_r), HasSubstr("methods[0].init_from"));
  EXPECT_THAT(AllProblems(other_r), HasSubstr(kPeftLora + ": r is " + std::to_string(r) + " in the folder, " +
                                               std::to_string(2 * r) + " in the job's adapter settings"));
  SpecResult other_method = ParseWith(kPeftLora, "sorsa", r);
  ASSERT_FALSE(other_method.ok());
  EXPECT_THAT(AllProblems(other_method), HasSubstr("a lora adapter, but the job's adapter is sorsa"));
}

TEST(InitFrom, UnreadableOrRelativeFolderIsASpecProblem) {
  const std::string missing = sweepd::testing::MakeTempDir("init-from-empty-");
  SpecResult r = ParseWith(missing);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(AllProblems(r), HasSubstr(missing + "/adapter_config.json: cannot read"));
  EXPECT_THAT(AllProblems(r), HasSubstr("methods[0].init_from"));
  SpecResult relative = ParseWith("tiny-llama-lora-qv");
  ASSERT_FALSE(relative.ok());
  EXPECT_THAT(AllProblems(relative), HasSubstr("must be an absolute path"));
  // An unknown PEFT key is named, as sweep-train names it.
  const std::string unknown = CopyOfFixture("init-from-key-");
  json c = FixtureConfig();
  c["lora_scale_pattern"] = json::object();
  std::ofstream(unknown + "/adapter_config.json", std::ios::trunc) << c.dump(2);
  SpecResult key = ParseWith(unknown);
  ASSERT_FALSE(key.ok());
  EXPECT_THAT(AllProblems(key), HasSubstr("unknown PEFT key 'lora_scale_pattern'"));
}

}  // namespace
}  // namespace sweepd::spec
