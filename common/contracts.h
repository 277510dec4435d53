// The contracts between sweepd's processes, defined once: the trainer's exit statuses (read
// by sweep-worker), how an attempt ended (written by sweep-worker, stored and retried by
// sweepd, shown by sweepctl), and the keys of the trainer's metric lines (docs/metrics.md).
// Torch-free and header-only: every binary includes it.
#pragma once

#include <array>
#include <utility>
#include <optional>
#include <string_view>

namespace sweepd {

// sweep-train's exit statuses (docs/worker.md). Only kInvalid means "this job can never
// succeed as written" and is not retried; kCrashed (and any status not listed) is a fault
// of the attempt -- I/O, driver, a corrupt checkpoint, a bug -- and sweepd retries it.
namespace exit_status {
inline constexpr int kOk = 0;
inline constexpr int kCrashed = 1;
inline constexpr int kInvalid = 2;  // the job's configuration, its data or its model files
inline constexpr int kNonFinite = 3;
inline constexpr int kOutOfMemory = 4;
inline constexpr int kTerminated = 143;  // 128 + SIGTERM, after a clean stop
}  // namespace exit_status

// How an attempt ended (attempts.outcome in the database, FinishAttempt on the wire).
enum class Outcome {
  kSucceeded,
  kOutOfMemory,
  kNonFiniteLoss,
  kCrashed,
  kTimedOut,
  kCancelled,
  kHandedBack,
  kInvalidConfig,
  kLeaseExpired,       // sweepd: the worker stopped heartbeating
  kDependencyFailed,   // sweepd: the job's base evaluation failed for good
};

inline constexpr std::array<std::pair<Outcome, std::string_view>, 10> kOutcomeNames{{
    {Outcome::kSucceeded, "succeeded"},
    {Outcome::kOutOfMemory, "out_of_memory"},
    {Outcome::kNonFiniteLoss, "non_finite_loss"},
    {Outcome::kCrashed, "crashed"},
    {Outcome::kTimedOut, "timed_out"},
    {Outcome::kCancelled, "cancelled"},
    {Outcome::kHandedBack, "handed_back"},
    {Outcome::kInvalidConfig, "invalid_config"},
    {Outcome::kLeaseExpired, "lease_expired"},
    {Outcome::kDependencyFailed, "dependency_failed"},
}};

constexpr std::string_view OutcomeName(Outcome outcome) {
  for (const auto& [o, name] : kOutcomeNames) {
    if (o == outcome) return name;
  }
  return "crashed";
}

constexpr std::optional<Outcome> ParseOutcome(std::string_view name) {
  for (const auto& [o, n] : kOutcomeNames) {
    if (n == name) return o;
  }
  return std::nullopt;
}

// Keys of the trainer's metric lines, one JSON object per stdout line (docs/metrics.md).
namespace metric_key {
inline constexpr const char* kType = "type";
inline constexpr const char* kStep = "step";
inline constexpr const char* kScores = "scores";
inline constexpr const char* kBaseFingerprint = "base_fingerprint";
}  // namespace metric_key

// Values of metric_key::kType.
namespace metric_type {
inline constexpr const char* kStart = "start";
inline constexpr const char* kStep = "step";
inline constexpr const char* kEval = "eval";
inline constexpr const char* kCheckpoint = "checkpoint";
inline constexpr const char* kFinal = "final";
inline constexpr const char* kError = "error";  // written by sweep-worker, see MetricErrorLine
}  // namespace metric_type

}  // namespace sweepd
