// sweepctl's exit statuses (documented in docs/sweepctl.md), and how a Status maps to one.
#pragma once

#include "common/status.h"

namespace sweepd::client {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,       // anything else: an internal error, a refused request
  kExitUsage = 2,         // bad arguments or options
  kExitInvalidSpec = 3,   // the sweep spec has problems (printed as FILE:LINE:COL: field: message)
  kExitUnavailable = 4,   // the coordinator cannot be reached, or the database cannot be read
  kExitNotFound = 5,      // no such sweep, job or file
  kExitSweepFailed = 6,   // watch: the sweep ended with failed or cancelled jobs
  kExitRefused = 7,       // the request is not possible now (e.g. cancel with --db)
};

inline int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk: return kExitOk;
    case StatusCode::kInvalidArgument: return kExitUsage;
    case StatusCode::kNotFound: return kExitNotFound;
    case StatusCode::kUnavailable: return kExitUnavailable;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAlreadyExists: return kExitRefused;
    default: return kExitFailure;
  }
}

}  // namespace sweepd::client
