// How an attempt ended (an Outcome of common/contracts.h), decided from the trainer's exit
// status (exit_status:: there, docs/worker.md), the signal that killed it, what it wrote on
// stderr, and what the agent itself did to it (cancel, timeout, drain). Only
// exit_status::kInvalid means the job cannot succeed as written; anything not listed there
// is a crash, which sweepd retries.
#pragma once

#include <string>
#include <string_view>

#include "common/contracts.h"
#include "worker/agent/child_process.h"

namespace sweepd::agent {

// What a stderr line says about the failure, if anything. Scanned line by line as the
// trainer writes, so a message that scrolled out of the tail still counts.
enum class StderrHint { kNone, kOutOfMemory, kNonFiniteLoss };
StderrHint ScanStderrLine(std::string_view line);

// Why the agent stopped the trainer, if it did.
// kSpoolFailed: the attempt's metric lines could not be written (a full disk): a crash.
enum class StopReason { kNone, kCancelled, kTimedOut, kHandedBack, kLeaseLost, kSpoolFailed };

struct AttemptEnd {
  ExitStatus exit;
  StopReason stop = StopReason::kNone;
  StderrHint hint = StderrHint::kNone;  // the strongest hint seen on stderr
  bool saw_final_line = false;  // stdout carried a final line with every field it needs
};

Outcome ClassifyOutcome(const AttemptEnd& end);

}  // namespace sweepd::agent
