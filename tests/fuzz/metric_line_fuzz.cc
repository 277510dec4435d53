// libFuzzer target: one stdout line of sweep-train read as a metric line (common/
// metric_line.h) the way sweep-worker, sweepd and sweepctl read it. Reading never throws;
// a line that does not read has a message, bounded; the "error" line written in its place
// reads back as a metric line; every number of a line that reads is within the limit.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/metric_line.h"

namespace {

void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s: %s\n", what, detail.substr(0, 300).c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sweepd::MetricLine;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const sweepd::Result<MetricLine> line = MetricLine::Read(text);
  const std::optional<std::string> error = sweepd::MetricLineError(text);
  if (!line.ok()) {
    if (line.status().message().empty()) Fail("an error without a message", text);
    if (!error || error->size() > 1024) Fail("MetricLineError unbounded or missing", text);
    const std::string replacement = sweepd::MetricErrorLine(line.status().message(), text);
    const sweepd::Result<MetricLine> back = MetricLine::Read(replacement);
    if (!back.ok() || back->type() != "error") Fail("an error line that does not read", replacement);
    return 0;
  }
  if (line->type().empty()) Fail("a line without a type", text);
  for (const char* key : {"step", "loss", "lr", "score", "total_params", "wall_s", "tokens"}) {
    if (std::optional<double> v = line->Number(key)) {
      if (!std::isfinite(*v) || std::fabs(*v) > sweepd::metric_limit::kMagnitude) {
        Fail("a number beyond the limit", text);
      }
    }
    (void)line->Integer(key);
    (void)line->Text(key);
  }
  if (line->step() && *line->step() < 0) Fail("a negative step", text);
  (void)sweepd::ReadScores(line->value(), "scores");
  (void)sweepd::FinalLine::Read(*line);
  return 0;
}
