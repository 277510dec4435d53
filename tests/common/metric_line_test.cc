// MetricLine and FinalLine on the lines of tests/common/fixtures/metric_lines.json: typed
// reads never throw, a line that is not a metric line (or a final line that lacks a field
// docs/metrics.md requires) is an error naming what is wrong.
#include "common/metric_line.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sweepd {
namespace {

using nlohmann::json;

json Fixture() {
  std::ifstream in(std::string(SWEEPD_SOURCE_DIR) + "/tests/common/fixtures/metric_lines.json");
  std::stringstream text;
  text << in.rdbuf();
  json fixture = json::parse(text.str(), nullptr, false);
  EXPECT_TRUE(fixture.is_object()) << "tests/common/fixtures/metric_lines.json does not parse";
  return fixture;
}

TEST(MetricLineTest, TypeAndStepAreReadFromTheTopLevelObject) {
  const json fixture = Fixture();
  ASSERT_FALSE(fixture["valid"].empty());
  for (const json& c : fixture["valid"]) {
    const std::string text = c["line"].get<std::string>();
    Result<MetricLine> line = MetricLine::Read(text);
    ASSERT_TRUE(line.ok()) << text << ": " << line.status().message();
    EXPECT_EQ(line->type(), c["type"].get<std::string>()) << text;
    EXPECT_EQ(line->text(), text);
    if (c.contains("step")) {
      EXPECT_EQ(line->step(), std::optional<int64_t>(c["step"].get<int64_t>())) << text;
    } else {
      EXPECT_FALSE(line->step().has_value()) << text;
    }
    if (c.contains("not_a_number")) {
      // A field of the wrong type is absent to a typed read, not an abort.
      EXPECT_FALSE(line->Number(c["not_a_number"].get<std::string>()).has_value()) << text;
    }
  }
}

TEST(MetricLineTest, LinesThatAreNotMetricLinesAreErrorsNamingTheField) {
  const json fixture = Fixture();
  ASSERT_FALSE(fixture["invalid"].empty());
  for (const json& c : fixture["invalid"]) {
    const std::string text = c["line"].get<std::string>();
    Result<MetricLine> line = MetricLine::Read(text);
    ASSERT_FALSE(line.ok()) << text << " was read as a metric line";
    EXPECT_EQ(line.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(line.status().message().find(c["names"].get<std::string>()), std::string::npos)
        << text << ": " << line.status().message();
  }
}

TEST(FinalLineTest, RequiredFieldsAreReadWithTheirTypes) {
  const json fixture = Fixture();
  ASSERT_FALSE(fixture["final_valid"].empty());
  for (const json& c : fixture["final_valid"]) {
    const std::string text = c.get<std::string>();
    const json expected = json::parse(text);
    Result<MetricLine> line = MetricLine::Read(text);
    ASSERT_TRUE(line.ok()) << line.status().message();
    Result<FinalLine> final_line = FinalLine::Read(*line);
    ASSERT_TRUE(final_line.ok()) << text << ": " << final_line.status().message();
    EXPECT_EQ(final_line->job_id, expected["job_id"].get<std::string>());
    EXPECT_EQ(final_line->kind, expected["kind"].get<std::string>());
    EXPECT_EQ(final_line->seed, expected["seed"].get<int64_t>());
    EXPECT_EQ(final_line->total_params, expected["total_params"].get<int64_t>());
    EXPECT_EQ(final_line->wall_s, expected["wall_s"].get<double>());
    using Scores = std::map<std::string, double>;
    EXPECT_EQ(final_line->scores, expected["scores"].get<Scores>());
    EXPECT_EQ(final_line->base_fingerprint, expected.value("base_fingerprint", std::string()));
    if (expected.contains("trainable_params")) {
      EXPECT_EQ(final_line->trainable_params, expected["trainable_params"].get<int64_t>());
    } else {
      EXPECT_FALSE(final_line->trainable_params.has_value());
    }
  }
}

TEST(FinalLineTest, AMissingOrWrongTypedFieldIsNamed) {
  const json fixture = Fixture();
  ASSERT_FALSE(fixture["final_invalid"].empty());
  for (const json& c : fixture["final_invalid"]) {
    const std::string text = c["line"].get<std::string>();
    // A field of the wrong type fails the line's read; a missing one, the final line's.
    Result<MetricLine> line = MetricLine::Read(text);
    const Status status = line.ok() ? FinalLine::Read(*line).status() : line.status();
    ASSERT_FALSE(status.ok()) << text << " was read as a final line";
    EXPECT_NE(status.message().find(c["names"].get<std::string>()), std::string::npos)
        << text << ": " << status.message();
  }
}

TEST(MetricLineTest, ErrorLinesSayWhatWasWrongAndQuoteABoundedExcerpt) {
  const std::string huge(metric_limit::kLineBytes + 1, 'x');
  Result<MetricLine> over = MetricLine::Read(huge);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find(std::to_string(metric_limit::kLineBytes)),
            std::string::npos);
  const std::string error_line = MetricErrorLine("too long", huge);
  EXPECT_LT(error_line.size(), size_t{400});
  Result<MetricLine> read = MetricLine::Read(error_line);
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(read->type(), "error");
  EXPECT_EQ(MetricLineError(error_line).value_or("").rfind("too long: xxx", 0), 0u);
  const std::optional<std::string> not_json = MetricLineError(huge);
  ASSERT_TRUE(not_json.has_value());
  EXPECT_LT(not_json->size(), size_t{600});
  for (const json& c : Fixture()["valid"]) {
    EXPECT_FALSE(MetricLineError(c["line"].get<std::string>()).has_value()) << c["line"];
  }
}

TEST(MetricLineTest, DeeplyNestedLineIsReadWithoutExhaustingTheStack) {
  // nlohmann parses this without recursion; the magnitude walk must not recurse either.
  const std::string deep = R"({"type":"step","svd":{"x":)" + std::string(200000, '[') + "1" +
                           std::string(200000, ']') + "}}";
  Result<MetricLine> line = MetricLine::Read(deep);
  EXPECT_TRUE(line.ok()) << line.status().message();
}

}  // namespace
}  // namespace sweepd
