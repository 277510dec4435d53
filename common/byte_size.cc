#include "common/byte_size.h"

#include <cctype>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

namespace sweepd {

Result<int64_t> ParseByteSize(const std::string& text) {
  const auto bad = [&] {
    return Status::InvalidArgument("'" + text.substr(0, 40) +
                                   "' is not a size: give bytes (5000000000) or a size such as 500MB, 5GB, 2GiB");
  };
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    return bad();
  }
  std::string unit;
  for (char c : text.substr(used)) {
    if (!std::isspace(static_cast<unsigned char>(c))) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  static const std::vector<std::pair<std::string, double>> kUnits = {
      {"", 1}, {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"KIB", 1024.0}, {"MIB", 1048576.0}, {"GIB", 1073741824.0}};
  for (const auto& [name, scale] : kUnits) {
    const double bytes = value * scale;
    if (unit == name && std::isfinite(bytes) && bytes >= 1 && bytes < 9.2e18) return static_cast<int64_t>(bytes);
  }
  return bad();
}

}  // namespace sweepd
