// The text of a sweep spec, before YAML: read from a file or stdin within a size cap, and
// checked to be UTF-8 (YAML 1.2 streams are Unicode; yaml-cpp passes bytes through, and a
// byte that is not UTF-8 would otherwise surface much later, in JSON).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"
#include "spec/sweep_spec.h"

namespace sweepd::spec {

// The largest spec read or accepted, in bytes (docs/sweepctl.md); the largest spec in
// sweeps/ is a few KiB.
inline constexpr int64_t kMaxSpecBytes = int64_t{1} << 20;

// Reads the spec at `path` ("-": stdin). Only a regular file (or stdin) is read, and never
// more than kMaxSpecBytes: a directory, FIFO, device or socket, or a larger file, is an
// InvalidArgument naming the path and why; a missing file is NotFound.
Result<std::string> ReadSpecText(const std::string& path);

// The problem with `text` as a spec before parsing: over kMaxSpecBytes, or not UTF-8 (the
// first offending byte, with its line and column); nullopt when it is fine.
std::optional<SpecProblem> CheckSpecText(const std::string& text, const std::string& file);

// `text` cut to at most `max_bytes` (at a UTF-8 character boundary) with "... (N bytes)"
// appended when cut: what a message may quote of an input.
std::string Excerpt(const std::string& text, size_t max_bytes = 64);

}  // namespace sweepd::spec
