// Outcome classification; see outcome.h. The stderr patterns are the messages LibTorch,
// the CUDA caching allocator, the C++ runtime and the trainer print for these failures.
#include "worker/agent/outcome.h"

#include <array>
#include <utility>

namespace sweepd::agent {
namespace {

constexpr std::array<std::pair<std::string_view, StderrHint>, 10> kStderrPatterns{{
    {"CUDA out of memory", StderrHint::kOutOfMemory},
    {"OutOfMemoryError", StderrHint::kOutOfMemory},
    {"std::bad_alloc", StderrHint::kOutOfMemory},
    {"CUBLAS_STATUS_ALLOC_FAILED", StderrHint::kOutOfMemory},
    {"NPU out of memory", StderrHint::kOutOfMemory},
    {"DefaultCPUAllocator: can't allocate memory", StderrHint::kOutOfMemory},
    {"Cannot allocate memory", StderrHint::kOutOfMemory},
    {"non-finite loss", StderrHint::kNonFiniteLoss},
    {"loss is nan", StderrHint::kNonFiniteLoss},
    {"loss is inf", StderrHint::kNonFiniteLoss},
}};

}  // namespace

StderrHint ScanStderrLine(std::string_view line) {
  for (const auto& [pattern, hint] : kStderrPatterns) {
    if (line.find(pattern) != std::string_view::npos) return hint;
  }
  return StderrHint::kNone;
}

Outcome ClassifyOutcome(const AttemptEnd& end) {
  // What the agent did outranks how the trainer reacted to it (143 after SIGTERM).
  switch (end.stop) {
    case StopReason::kCancelled:
      return Outcome::kCancelled;
    case StopReason::kTimedOut:
      return Outcome::kTimedOut;
    case StopReason::kHandedBack:
      return Outcome::kHandedBack;
    case StopReason::kLeaseLost:
      return Outcome::kCancelled;
    case StopReason::kSpoolFailed:
      return Outcome::kCrashed;  // whatever the trainer did next: its metrics are not all kept
    case StopReason::kNone:
      break;
  }
  if (end.exit.exit_code == exit_status::kOk) {
    // A trainer that exits 0 without its final line did not finish its contract.
    return end.saw_final_line ? Outcome::kSucceeded : Outcome::kCrashed;
  }
  if (end.exit.exit_code == exit_status::kInvalid) return Outcome::kInvalidConfig;
  if (end.exit.exit_code == exit_status::kNonFinite) return Outcome::kNonFiniteLoss;
  if (end.exit.exit_code == exit_status::kOutOfMemory) return Outcome::kOutOfMemory;
  // A crash (abort, SIGKILL by the kernel's OOM killer, odd exit) whose stderr names the
  // cause is reported as that cause: the retry policy treats them differently.
  if (end.hint == StderrHint::kOutOfMemory) return Outcome::kOutOfMemory;
  if (end.hint == StderrHint::kNonFiniteLoss) return Outcome::kNonFiniteLoss;
  return Outcome::kCrashed;
}

}  // namespace sweepd::agent
