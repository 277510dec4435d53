// sweepctl export --adapters DIR: the adapter folders (and merged models) of a sweep's best
// configuration, copied out of the sweep's output_dir (docs/results.md).
#pragma once

#include <string>
#include <vector>

#include "client/records.h"
#include "client/result_table.h"
#include "common/status.h"

namespace sweepd::client {

// Picks, among the training jobs that pass `filters` and have a trade-off, the configuration
// (everything but the seed) with the highest mean trade-off over its seeds, the export's Trade-off
// column, and copies each of its jobs' OutputFolder(output_dir, job_id)/adapter and, where a
// merge job wrote one, .../merged into dir/seed-<seed>/, with dir/best.json naming the
// configuration, the jobs and their trade-offs. `dir` must not exist or be empty; it is written
// beside itself and renamed at the end. Returns a one-line summary.
Result<std::string> ExportBestAdapters(const std::vector<ResultRecord>& records, const std::vector<Filter>& filters,
                                       const std::string& dir);

}  // namespace sweepd::client
