// How an attempt ended, decided from the trainer's exit status, the signal that killed
// it, what it wrote on stderr, and what the agent itself did to it (cancel, timeout,
// drain). The trainer's exit codes are the contract in docs/worker.md: 0 success,
// 2 invalid configuration, 3 non-finite loss, 4 out of memory; anything else a crash.
#pragma once

#include <string>
#include <string_view>

#include "worker/agent/child_process.h"

namespace sweepd::agent {

enum class Outcome {
  kSucceeded,
  kOutOfMemory,
  kNonFiniteLoss,
  kCrashed,
  kTimedOut,
  kCancelled,
  kHandedBack,
  kInvalidConfig,
};

std::string_view OutcomeName(Outcome outcome);

// What a stderr line says about the failure, if anything. Scanned line by line as the
// trainer writes, so a message that scrolled out of the tail still counts.
enum class StderrHint { kNone, kOutOfMemory, kNonFiniteLoss };
StderrHint ScanStderrLine(std::string_view line);

// Why the agent stopped the trainer, if it did.
enum class StopReason { kNone, kCancelled, kTimedOut, kHandedBack, kLeaseLost };

struct AttemptEnd {
  ExitStatus exit;
  StopReason stop = StopReason::kNone;
  StderrHint hint = StderrHint::kNone;  // the strongest hint seen on stderr
  bool saw_final_line = false;          // stdout carried {"type":"final",...}
};

Outcome ClassifyOutcome(const AttemptEnd& end);

}  // namespace sweepd::agent
