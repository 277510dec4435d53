// How `sweep-train run` ends after an exception: the exit status (common/contracts.h) and
// the one stderr line that says which kind of failure it was (worker/failures.h).
#pragma once

#include <exception>
#include <string>

namespace sweepd::trainer {

struct FailureExit {
  int status = 0;
  std::string line;  // without "sweep-train: "; e.g. "crash (I/O error): PATH: write failed: ..."
};

// `stopping`: SIGTERM arrived, and the failure is the run stopping for it.
FailureExit ClassifyFailure(const std::exception_ptr& error, bool stopping);

}  // namespace sweepd::trainer
