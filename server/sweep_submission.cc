// Spec validation and storage of a submitted sweep.
#include "server/sweep_submission.h"

namespace sweepd::server {

Result<Submission> SubmitSweep(Store& store, const std::string& spec_yaml, const std::string& spec_path,
                               bool dry_run, int64_t now_ms, const spec::SpecLimits& limits) {
  Submission out;
  spec::SpecResult parsed = spec::ParseSweepSpec(spec_yaml, spec_path, limits);
  out.problems = std::move(parsed.problems);
  out.sweep = std::move(parsed.sweep);
  if (!out.problems.empty()) return out;
  out.counts.jobs_total = static_cast<int64_t>(out.sweep.jobs.size());
  if (dry_run) {
    // Which jobs an earlier sweep already holds (their results would be reused).
    for (const spec::ExpandedJob& job : out.sweep.jobs) {
      Result<JobRecord> existing = store.GetJob(job.config.job_id);
      if (existing.ok()) ++out.counts.jobs_reused;
      else if (existing.status().code() == StatusCode::kNotFound) ++out.counts.jobs_new;
      else return existing.status();
    }
    out.accepted = true;
    return out;
  }
  Result<AddSweepResult> added = store.AddSweep(out.sweep, now_ms);
  if (!added.ok()) return added.status();
  out.counts = *added;
  out.accepted = true;
  return out;
}

}  // namespace sweepd::server
