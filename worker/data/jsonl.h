// JSON Lines files: one object per line, errors as "FILE:LINE: problem".
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "worker/failures.h"

namespace sweepd::data {

// A malformed row of a data file; what() is "FILE:LINE: problem".
class DataError : public InvalidInput {
 public:
  DataError(const std::string& file, int64_t line, const std::string& problem)
      : InvalidInput(file + ":" + std::to_string(line) + ": " + problem) {}
};

// The longest line read as one row (docs/job-config.md): a long chat or document is a few
// hundred KiB; a longer line is refused before it is parsed, so reading stays bounded.
inline constexpr int64_t kMaxJsonLineBytes = int64_t{8} << 20;

// Calls visit(row, line) for every non-blank line of `path`; throws DataError for a line
// that is not a JSON object or is over kMaxJsonLineBytes, and InvalidInput when the file
// cannot be read. When `stop` (may be null) becomes true, reading ends with an exception
// between lines (SIGTERM during loading).
void ForEachJsonLine(const std::string& path,
                     const std::function<void(const nlohmann::json&, int64_t)>& visit,
                     const std::atomic<bool>* stop = nullptr);

// The string field `key` of `row`; throws DataError naming the field otherwise.
std::string StringField(const nlohmann::json& row, const char* key, const std::string& path, int64_t line);

}  // namespace sweepd::data
