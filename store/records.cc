// Job state names, as stored; see records.h.
#include "store/records.h"

namespace sweepd::store {

const char* JobStateName(JobState state) {
  switch (state) {
    case JobState::kBlocked:
      return "blocked";
    case JobState::kQueued:
      return "queued";
    case JobState::kLeased:
      return "leased";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "failed";
}

std::optional<JobState> ParseJobState(const std::string& name) {
  for (JobState s : {JobState::kBlocked, JobState::kQueued, JobState::kLeased, JobState::kRunning,
                     JobState::kSucceeded, JobState::kFailed, JobState::kCancelled}) {
    if (name == JobStateName(s)) return s;
  }
  return std::nullopt;
}

bool IsTerminal(JobState s) {
  return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kCancelled;
}

bool SweepRecord::finished() const {
  int64_t terminal = 0;
  for (const auto& [state, n] : counts) {
    if (IsTerminal(state)) terminal += n;
  }
  return terminal == total_jobs;
}

}  // namespace sweepd::store
