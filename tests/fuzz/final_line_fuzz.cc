// libFuzzer target: a final line (docs/metrics.md) read as sweepd reads it before it counts
// an attempt as a success. A final line that reads has every required field in range
// (scores 0..100, counts and seconds >= 0, finite numbers); one that does not names a field.
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

bool Finite(double v) { return std::isfinite(v) && std::fabs(v) <= sweepd::metric_limit::kMagnitude; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const sweepd::Result<sweepd::MetricLine> line = sweepd::MetricLine::Read(text);
  if (!line.ok()) return 0;  // the metric-line target covers these
  const sweepd::Result<sweepd::FinalLine> final_line = sweepd::FinalLine::Read(*line);
  if (!final_line.ok()) {
    if (final_line.status().message().find('"') == std::string::npos) {
      Fail("a final line refused without naming a field", final_line.status().message());
    }
    return 0;
  }
  const sweepd::FinalLine& f = *final_line;
  if (line->type() != "final") Fail("a final line of another type", text);
  if (f.total_params < 0 || f.peak_mem_bytes < 0 || !Finite(f.wall_s) || f.wall_s < 0) {
    Fail("a count or time out of range", text);
  }
  if (f.trainable_params && *f.trainable_params < 0) Fail("negative trainable_params", text);
  for (const auto& [task, score] : f.scores) {
    if (!Finite(score) || score < 0 || score > 100) Fail("a score out of 0..100", text);
  }
  if (f.final_loss && !Finite(*f.final_loss)) Fail("a loss beyond the limit", text);
  if (f.tradeoff && !Finite(*f.tradeoff)) Fail("a trade-off beyond the limit", text);
  return 0;
}
