// ProgressView: draws a sweep's progress for `sweepctl watch`. On a terminal it redraws
// one block in place (bar, counts by state, running jobs with loss and tokens/s, ETA);
// into a pipe or file it writes one plain line whenever the counts change.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "client/records.h"

namespace sweepd::client {

class ProgressView {
 public:
  // `redraw`: true for a terminal. `now_ms` comes from the caller so the view is testable.
  ProgressView(std::ostream& out, bool redraw) : out_(out), redraw_(redraw) {}

  void Show(const SweepProgress& progress, int64_t now_ms);
  // The last line: how the sweep ended.
  void Finish(const SweepProgress& progress);

  // Text helpers, exposed for tests.
  static std::string Bar(int64_t done, int64_t total, int width);
  static std::string Duration(int64_t seconds);  // "3m20s"
  // Remaining time from the rate since submission; empty when no job has finished yet.
  static std::string Eta(const SweepInfo& s, int64_t now_ms);

 private:
  std::string CountsText(const SweepInfo& s) const;

  std::ostream& out_;
  bool redraw_;
  int lines_drawn_ = 0;       // terminal: lines to move up before redrawing
  std::string last_plain_;    // pipe: the last line written, to skip repeats
};

}  // namespace sweepd::client
