// One sweep through the real services on loopback, for end-to-end tests: a spec file with
// @PLACEHOLDER@s replaced, sweepd on DIR/sweepd.db, one sweep-worker (its cache in DIR/cache),
// `sweepctl submit` and `sweepctl watch` until the sweep ends; the services are stopped after.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sweepd::testing {

struct LocalSweepRun {
  bool started = false;  // sweepd listened and submit succeeded
  int watch_status = -1;
  std::string output;    // submit's or watch's output and, when watch failed, the worker's log
};

// `text` with every `key` replaced by its value.
std::string ReplaceAll(std::string text, const std::vector<std::pair<std::string, std::string>>& replacements);

// Runs `spec_template` (a file) with `replacements` as DIR/sweep.yaml, the sweep named `sweep`.
LocalSweepRun RunLocalSweep(const std::string& dir, const std::string& spec_template,
                            const std::vector<std::pair<std::string, std::string>>& replacements,
                            const std::string& sweep);

}  // namespace sweepd::testing
