// JSON Lines files: one object per line, errors as "FILE:LINE: problem".
#pragma once

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

// Calls visit(row, line) for every non-blank line of `path`; throws DataError for a line
// that is not a JSON object, and InvalidInput when the file cannot be read.
void ForEachJsonLine(const std::string& path,
                     const std::function<void(const nlohmann::json&, int64_t)>& visit);

// The string field `key` of `row`; throws DataError naming the field otherwise.
std::string StringField(const nlohmann::json& row, const char* key, const std::string& path, int64_t line);

}  // namespace sweepd::data
