#include "common/job_folder_name.h"

namespace sweepd {

Status CheckJobFolderName(const std::string& job_id) {
  const bool ok = !job_id.empty() && job_id.size() <= 200 && job_id != "." && job_id != ".." &&
                  job_id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
                      std::string::npos;
  if (ok) return Status::Ok();
  return Status::InvalidArgument("job id '" + job_id.substr(0, 200) +
                                 "' cannot name a folder under output_dir (use [A-Za-z0-9._-])");
}

}  // namespace sweepd
