// MetricSpool: the local, durable record of one attempt's metric lines, numbered from 1
// in the trainer's output order. It is the source of truth for what sweepd must store:
// the stream to sweepd reads from it, so a line printed while sweepd is away is sent
// after it comes back. File format: one JSON object per line, {"seq":N,"json":"<line>"}.
#pragma once

#include <cstdint>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"

namespace sweepd::agent {

struct SpooledPoint {
  int64_t seq = 0;
  std::string json;  // the line as the trainer printed it
};

// Threads: Append and Close from the attempt's stdout reader; ReadFrom, last_seq and
// closed from any thread (the metric stream). The listener runs on the appending thread.
class MetricSpool {
 public:
  // Creates (or truncates) the spool file.
  static Result<std::unique_ptr<MetricSpool>> Create(const std::filesystem::path& path);
  ~MetricSpool();

  // Stores a line durably (flushed to the kernel) and returns its seq.
  Result<int64_t> Append(const std::string& json_line);
  // No more lines will come: the trainer's stdout ended.
  void Close();
  // Up to `max` points with seq >= first_seq, in order, whose lines add up to at most
  // `max_bytes` (at least one point when there is one: a line is never over the limit of a
  // call, common/metric_line.h).
  std::vector<SpooledPoint> ReadFrom(int64_t first_seq, size_t max,
                                     size_t max_bytes = SIZE_MAX) const;

  int64_t last_seq() const;
  bool closed() const;
  const std::filesystem::path& path() const { return path_; }
  // Called after each Append and after Close; set before the first Append.
  void set_listener(std::function<void()> listener) { listener_ = std::move(listener); }

 private:
  MetricSpool(std::filesystem::path path, std::FILE* file);

  const std::filesystem::path path_;
  std::function<void()> listener_;
  mutable std::mutex mu_;
  std::FILE* file_;               // guarded by mu_; owned
  std::vector<int64_t> offsets_;  // guarded by mu_; file offset of seq i+1's record
  std::vector<int64_t> lengths_;  // guarded by mu_
  bool closed_ = false;           // guarded by mu_
};

// Reads back a spool file written by MetricSpool (for tests and post-mortems).
Result<std::vector<SpooledPoint>> ReadSpoolFile(const std::filesystem::path& path);

}  // namespace sweepd::agent
