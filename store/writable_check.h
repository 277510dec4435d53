// Whether sweepd may write its database: the file (when it exists) and its folder (where
// SQLite keeps the -wal and -shm files beside it) must both be writable, checked before
// sweepd serves so that it never answers calls whose writes would all fail.
#pragma once

#include <string>

#include "common/status.h"

namespace sweepd::store {

// FailedPrecondition naming the file or folder and what to change when `path`, or the
// folder that holds it, is read-only: no owner write permission in its mode (refused even
// for root, who could write it: someone marked it read-only), no write access for this
// user, or a read-only file system.
Status CheckWritable(const std::string& path);

}  // namespace sweepd::store
