// Sweep specs: parsing a YAML spec into typed structs, validating it (every problem
// with its line and field), and expanding its grid into resolved job configurations.
// Torch-free: used by sweepd (submit) and by sweepctl (validate, submit --dry-run).
// The format is documented in sweeps/README.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/job_config.h"

namespace sweepd::spec {

struct SpecProblem {
  std::string file;
  int line = 0;     // 1-based; 0 when the problem is not tied to a line
  int column = 0;
  std::string field;  // dotted path, e.g. methods[2].r
  std::string message;
};
// At most this many problems are returned (the rest are counted in one last problem, "and N
// more"), so that sweepd's answer and sweepctl's output stay small whatever the spec holds.
inline constexpr size_t kMaxReportedProblems = 100;
// A problem's field and message are cut to these lengths, so none quotes a long input whole.
inline constexpr size_t kMaxProblemFieldBytes = 200;
inline constexpr size_t kMaxProblemMessageBytes = 1000;

// "FILE:LINE:COL: FIELD: MESSAGE", for terminals and logs.
std::string FormatProblem(const SpecProblem& p);

struct ExpandedJob {
  JobConfig config;              // job_id filled in (hash of CanonicalJobJson)
  int64_t trainable_params = 0;
  int64_t reference_params = 0;  // the budget reference's count on the same track; 0 if none
  bool budget_enforced = true;   // false for `budget: report`
  std::vector<std::string> depends_on;  // job_ids (the base_eval job of its model)
  int64_t memory_bytes = 0;      // free device memory the job needs (resources.memory_gib); 0: any
};

struct ExpandedSweep {
  std::string name;
  int priority = 0;
  int max_attempts = 3;           // attempts per job before it fails for good
  std::string spec_yaml;
  std::string spec_path;
  std::vector<ExpandedJob> jobs;  // base_eval jobs first, then the grid in spec order
};

struct SpecLimits {
  int64_t max_jobs = 10000;  // grids larger than this are rejected
};

struct SpecResult {
  std::vector<SpecProblem> problems;  // empty iff the spec is valid
  ExpandedSweep sweep;                // meaningful only when problems is empty
  bool ok() const { return problems.empty(); }
};

// Parses, validates and expands `yaml`; `path` only labels problems. Text over 1 MiB or not
// UTF-8 is one problem (spec/spec_text.h); at most kMaxReportedProblems are returned.
SpecResult ParseSweepSpec(const std::string& yaml, const std::string& path,
                          const SpecLimits& limits = {});
// Reads the file (spec/spec_text.h: "-" is stdin; regular files only, 1 MiB at most) and calls
// ParseSweepSpec; a file that cannot be read is one problem.
SpecResult ParseSweepSpecFile(const std::string& path, const SpecLimits& limits = {});

// The stable identity of a job: "j-" + the first 16 hex digits of SHA-256(CanonicalJobJson).
std::string JobIdFor(const JobConfig& config);

}  // namespace sweepd::spec
