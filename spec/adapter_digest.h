// The content digest of an adapter folder (adapter.init_from): what identifies a job that
// starts from it, so that a moved copy is the same job and a changed tensor another one.
#pragma once

#include <string>

#include "common/status.h"

namespace sweepd::spec {

// "sha256:<hex>" of FOLDER's adapter_config.json as canonical JSON (keys sorted, no
// whitespace) and of adapter_model.safetensors' tensors in name order (name, dtype, shape and
// bytes; the header's layout and __metadata__ left out). The error names the file and what to do.
Result<std::string> AdapterFolderDigest(const std::string& folder);

}  // namespace sweepd::spec
