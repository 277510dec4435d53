// Stored metric points against the worker's spool; see stored_metrics.h.
#include "tests/support/stored_metrics.h"

#include <fstream>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/sqlite_rows.h"

namespace sweepd::testing {
namespace {

// Every line of a spool file with its seq, in order.
std::vector<std::pair<int64_t, std::string>> ReadSpool(const std::string& path) {
  std::vector<std::pair<int64_t, std::string>> points;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    points.emplace_back(j.at("seq").get<int64_t>(), j.at("json").get<std::string>());
  }
  return points;
}

std::string Count(const std::string& db_path, const std::string& sql) {
  const Rows rows = QueryRows(db_path, sql);
  return rows.empty() ? "" : rows[0][0];
}

}  // namespace

void ExpectNoPointStoredTwice(const std::string& db_path) {
  const std::string points = Count(db_path, "SELECT count(*) FROM metric_points");
  EXPECT_NE(points, "0");
  EXPECT_EQ(points,
            Count(db_path, "SELECT count(*) FROM (SELECT DISTINCT attempt_id, seq FROM metric_points)"));
}

std::vector<int64_t> ExpectStoredPointsEqualTheSpool(const std::string& db_path, const std::string& attempt_id,
                                                     const std::string& spool_path) {
  const Rows stored = QueryRows(
      db_path, "SELECT seq, json FROM metric_points WHERE attempt_id = ?1 ORDER BY seq", {attempt_id});
  const auto spool = ReadSpool(spool_path);
  EXPECT_FALSE(stored.empty());
  EXPECT_EQ(stored.size(), spool.size()) << spool_path;
  if (stored.empty() || stored.size() != spool.size()) return {};
  std::vector<int64_t> steps;
  for (size_t i = 0; i < stored.size(); ++i) {
    EXPECT_EQ(stored[i][0], std::to_string(i + 1));
    EXPECT_EQ(spool[i].first, static_cast<int64_t>(i + 1));
    EXPECT_EQ(stored[i][1], spool[i].second);
    const auto line = nlohmann::json::parse(stored[i][1]);
    if (line.at("type") == "step") steps.push_back(line.at("step").get<int64_t>());
  }
  EXPECT_EQ(nlohmann::json::parse(stored.front()[1]).at("type"), "start");
  EXPECT_EQ(nlohmann::json::parse(stored.back()[1]).at("type"), "final");
  for (size_t i = 1; i < steps.size(); ++i) EXPECT_EQ(steps[i], steps[i - 1] + 1);
  return steps;
}

}  // namespace sweepd::testing
