// Test support: a final metrics line that counts as success (every field docs/metrics.md
// requires), from tests/common/fixtures/metric_lines.json, with a test's own fields on top.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace sweepd::testing {

// `fields` over the fixture's complete final line of the same kind ("train" unless `fields`
// says "base_eval").
inline nlohmann::json CompleteFinalLine(const nlohmann::json& fields) {
  std::ifstream in(std::string(SWEEPD_SOURCE_DIR) + "/tests/common/fixtures/metric_lines.json");
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json fixture = nlohmann::json::parse(text.str(), nullptr, false);
  nlohmann::json line = nlohmann::json::object();
  if (fixture.is_object() && fixture.contains("final_valid")) {
    for (const nlohmann::json& c : fixture["final_valid"]) {
      const nlohmann::json candidate = nlohmann::json::parse(c.get<std::string>());
      if (candidate["kind"] == fields.value("kind", std::string("train"))) line = candidate;
    }
  }
  line.update(fields);
  return line;
}

}  // namespace sweepd::testing
