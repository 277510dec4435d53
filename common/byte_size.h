// Sizes written as text: bytes ("5000000000") or a number with huggingface_hub's units, KB, MB,
// GB (powers of 10) or KiB, MiB, GiB (powers of 2), case-insensitive ("500MB", "5GB", "2GiB").
// One reader for `sweep-train merge --max-shard-size` and a spec's merge.max_shard_size.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace sweepd {

// The size in bytes (at least 1); the message quotes the text and shows the accepted forms.
Result<int64_t> ParseByteSize(const std::string& text);

}  // namespace sweepd
