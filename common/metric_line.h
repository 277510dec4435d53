// MetricLine and FinalLine: sweep-train's stdout lines (docs/metrics.md) read once, with
// their types checked, by everyone who reads them (sweep-worker, sweepd's store and
// scheduler, sweepctl). Reading never throws: a line that is not a metric line, or a field
// of the wrong JSON type, is an error value naming the field, never an abort.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace sweepd {

// One line: a JSON object with a string "type" and, if present, an integer "step" >= 0.
class MetricLine {
 public:
  // InvalidArgument, naming the field, when `text` is not such a line.
  static Result<MetricLine> Read(std::string_view text);

  const std::string& type() const { return type_; }
  std::optional<int64_t> step() const { return step_; }
  const std::string& text() const { return text_; }  // the line as printed
  const nlohmann::json& value() const { return value_; }  // the parsed object

  // A top-level field of that JSON type; nullopt when it is absent or of another type.
  std::optional<double> Number(std::string_view key) const;
  std::optional<int64_t> Integer(std::string_view key) const;
  std::optional<std::string> Text(std::string_view key) const;

 private:
  std::string type_;
  std::optional<int64_t> step_;
  std::string text_;
  nlohmann::json value_;
};

// The fields a "final" line must carry (docs/metrics.md, docs/metrics.schema.json), typed.
// Fields a train job's line adds are read when present and of their type.
struct FinalLine {
  std::string job_id;
  std::string kind;
  std::string method;
  std::string track;
  int64_t seed = 0;
  std::map<std::string, double> scores;  // task -> percent
  int64_t total_params = 0;
  double wall_s = 0;
  int64_t peak_mem_bytes = 0;
  std::string base_fingerprint;  // synthetic base models only; empty otherwise
  std::optional<int64_t> trainable_params;
  std::optional<double> final_loss;
  std::optional<double> tradeoff;

  // InvalidArgument naming the first field that is missing or of the wrong type.
  static Result<FinalLine> Read(const MetricLine& line);
};

// The task -> number object under `key` of a line (scores, base_scores, delta); nullopt
// when it is absent, not an object, or holds a value that is not a number.
std::optional<std::map<std::string, double>> ReadScores(const nlohmann::json& line,
                                                         std::string_view key);

}  // namespace sweepd
