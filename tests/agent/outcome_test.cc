#include "worker/agent/outcome.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace sweepd::agent {
namespace {

AttemptEnd Exited(int code, bool final_line = false) {
  AttemptEnd e;
  e.exit.exit_code = code;
  e.saw_final_line = final_line;
  return e;
}

AttemptEnd Signalled(int sig) {
  AttemptEnd e;
  e.exit.signal = sig;
  return e;
}

TEST(OutcomeTest, ExitCodesFollowTheTrainerContract) {
  EXPECT_EQ(ClassifyOutcome(Exited(0, true)), Outcome::kSucceeded);
  EXPECT_EQ(ClassifyOutcome(Exited(0, false)), Outcome::kCrashed);
  EXPECT_EQ(ClassifyOutcome(Exited(2)), Outcome::kInvalidConfig);
  EXPECT_EQ(ClassifyOutcome(Exited(3)), Outcome::kNonFiniteLoss);
  EXPECT_EQ(ClassifyOutcome(Exited(4)), Outcome::kOutOfMemory);
  EXPECT_EQ(ClassifyOutcome(Exited(1)), Outcome::kCrashed);
  EXPECT_EQ(ClassifyOutcome(Signalled(SIGSEGV)), Outcome::kCrashed);
  EXPECT_EQ(ClassifyOutcome(Signalled(SIGKILL)), Outcome::kCrashed);
}

TEST(OutcomeTest, StderrNamesTheCauseOfACrash) {
  EXPECT_EQ(ScanStderrLine("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"),
            StderrHint::kOutOfMemory);
  EXPECT_EQ(ScanStderrLine("terminate called after throwing an instance of 'std::bad_alloc'"),
            StderrHint::kOutOfMemory);
  EXPECT_EQ(ScanStderrLine("sweep-train: non-finite loss at step 12"), StderrHint::kNonFiniteLoss);
  EXPECT_EQ(ScanStderrLine("step 3 done"), StderrHint::kNone);

  AttemptEnd aborted = Signalled(SIGABRT);
  aborted.hint = StderrHint::kOutOfMemory;
  EXPECT_EQ(ClassifyOutcome(aborted), Outcome::kOutOfMemory);
  AttemptEnd odd = Exited(1);
  odd.hint = StderrHint::kNonFiniteLoss;
  EXPECT_EQ(ClassifyOutcome(odd), Outcome::kNonFiniteLoss);
}

TEST(OutcomeTest, WhatTheAgentDidOutranksTheExitStatus) {
  AttemptEnd e = Signalled(SIGTERM);
  e.stop = StopReason::kCancelled;
  EXPECT_EQ(ClassifyOutcome(e), Outcome::kCancelled);
  e.stop = StopReason::kTimedOut;
  EXPECT_EQ(ClassifyOutcome(e), Outcome::kTimedOut);
  e = Exited(143);
  e.stop = StopReason::kHandedBack;
  EXPECT_EQ(ClassifyOutcome(e), Outcome::kHandedBack);
}

}  // namespace
}  // namespace sweepd::agent
