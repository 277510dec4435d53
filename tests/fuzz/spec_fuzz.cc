// libFuzzer target: a sweep spec from text, parsed, validated and expanded (spec/). Any
// input must end in a result, and every problem must name its file, a line or a field,
// and say what is wrong (sweeps/README.md); anything else aborts, which libFuzzer reports.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "spec/sweep_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  sweepd::spec::SpecLimits limits;
  limits.max_jobs = 64;  // the expansion's cost per job is not what is fuzzed here
  const sweepd::spec::SpecResult result = sweepd::spec::ParseSweepSpec(yaml, "fuzz.yaml", limits);
  for (const sweepd::spec::SpecProblem& p : result.problems) {
    if (p.file.empty() || p.message.empty() || (p.line <= 0 && p.field.empty())) {
      std::fprintf(stderr, "problem without a file, a line or field, or a message: %s\n",
                   sweepd::spec::FormatProblem(p).c_str());
      std::abort();
    }
    // A message quotes a bounded excerpt of the input, never all of it.
    if (p.message.size() > 4096) {
      std::fprintf(stderr, "problem message of %zu bytes\n", p.message.size());
      std::abort();
    }
  }
  if (result.ok() && result.sweep.jobs.empty()) {
    std::fprintf(stderr, "a valid spec without jobs\n");
    std::abort();
  }
  return 0;
}
