// Submitting a sweep: spec text -> validated, expanded jobs -> the store. Shared by the
// SweepService and by tests; a dry run validates and expands without storing.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "server/store_names.h"
#include "spec/sweep_spec.h"

namespace sweepd::server {

struct Submission {
  bool accepted = false;                   // valid (and stored, unless a dry run)
  std::vector<spec::SpecProblem> problems;  // why not, when !accepted
  spec::ExpandedSweep sweep;
  AddSweepResult counts;
};

// Problems in the spec are a normal answer (accepted = false); a Status error means the
// store refused (e.g. the name exists with another spec) or failed.
Result<Submission> SubmitSweep(Store& store, const std::string& spec_yaml, const std::string& spec_path,
                               bool dry_run, int64_t now_ms, const spec::SpecLimits& limits = {});

}  // namespace sweepd::server
