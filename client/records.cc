// Small predicates over the client's records.
#include "client/records.h"

namespace sweepd::client {

bool IsTerminalState(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "cancelled";
}

int64_t SweepInfo::Count(const std::string& state) const {
  auto it = counts.find(state);
  return it == counts.end() ? 0 : it->second;
}

bool SweepInfo::Finished() const {
  return Count("succeeded") + Count("failed") + Count("cancelled") >= total_jobs;
}

}  // namespace sweepd::client
