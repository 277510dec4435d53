// Test support: what the end-to-end tests check of the metric points a real sweepd stored,
// against the spool file the real sweep-worker wrote (read here as plain JSON lines, not
// through the worker's own reader).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sweepd::testing {

// No metric point is stored twice, over every attempt of the database (and some exist).
void ExpectNoPointStoredTwice(const std::string& db_path);

// The points stored for `attempt_id` are seq 1..N, exactly the lines of `spool_path` (none
// lost, none twice), from the start line to the final line, with consecutive steps. Returns
// the steps of its step lines, in order.
std::vector<int64_t> ExpectStoredPointsEqualTheSpool(const std::string& db_path, const std::string& attempt_id,
                                                     const std::string& spool_path);

}  // namespace sweepd::testing
