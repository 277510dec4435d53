// A job id used as a folder name under a job's output_dir (JobConfig::output_dir): sweepd's ids
// are "j-" and hex digits; any other is accepted only when it stays one plain folder name.
#pragma once

#include <string>

#include "common/status.h"

namespace sweepd {

// Ok, or why `job_id` cannot name a folder under output_dir (the message quotes it).
Status CheckJobFolderName(const std::string& job_id);

}  // namespace sweepd
