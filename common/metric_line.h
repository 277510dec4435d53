// MetricLine and FinalLine: sweep-train's stdout lines (docs/metrics.md) read once, with
// their types checked, by everyone who reads them (sweep-worker, sweepd's store and
// scheduler, sweepctl), under limits both sides of the wire enforce. Reading never throws:
// a line that is not a metric line, or a field of the wrong JSON type, is an error value
// naming the field, never an abort.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace sweepd {

// Limits on metric lines (docs/metrics.md, "Limits"). sweep-worker keeps to them and sweepd
// enforces them; each is a named error, never a silent cut.
namespace metric_limit {
inline constexpr size_t kLineBytes = size_t{1} << 20;       // one line
inline constexpr size_t kCallBytes = size_t{4} << 20;       // the lines of one MetricBatch
inline constexpr size_t kCallLines = 1024;                  // the lines of one MetricBatch
inline constexpr int64_t kAttemptLines = 1000000;           // one attempt's lines
inline constexpr int64_t kAttemptBytes = int64_t{1} << 30;  // one attempt's lines, in bytes
// The seqs sweepd accepts: the attempt's lines, the worker's notice that it dropped the
// lines over the limit, and the final line.
inline constexpr int64_t kAttemptSeqs = kAttemptLines + 2;
inline constexpr size_t kStderrTailBytes = 8192;  // the stderr tail kept per attempt
// Every number of a metric line: |x| <= this (parameter counts, bytes and seconds fit; the
// sums of squares behind mean +- std stay finite).
inline constexpr double kMagnitude = 1e15;
}  // namespace metric_limit

// One line: a JSON object with a non-empty string "type"; the fields docs/metrics.md lists
// for a start, step, eval or checkpoint line have its JSON type when present, numbers are
// finite and within metric_limit::kMagnitude, counts are >= 0. A "final" line's own fields
// are FinalLine's to check.
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

// The fields a "final" line must carry to count as success (docs/metrics.md,
// docs/metrics.schema.json), typed and in range (scores 0..100, counts and seconds >= 0).
// Fields a train job's line adds are checked when present.
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

// The line sweep-worker spools (and sweepd stores) in place of a stdout line it cannot pass
// on: {"type":"error","error":MESSAGE,"excerpt":the first bytes of the line}.
std::string MetricErrorLine(std::string_view message, std::string_view line);

// What a person reads for a stored line that is an error: the reason a line is not a metric
// line, or the message of an "error" line; nullopt for a metric line.
std::optional<std::string> MetricLineError(std::string_view text);

// The task -> number object under `key` of a line (scores, base_scores, delta); nullopt
// when it is absent, not an object, or holds a value that is not a number.
std::optional<std::map<std::string, double>> ReadScores(const nlohmann::json& line,
                                                         std::string_view key);

}  // namespace sweepd
