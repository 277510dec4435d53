#include "worker/agent/backoff.h"

#include <gtest/gtest.h>

namespace sweepd::agent {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, DelaysGrowWithJitterUpToTheCeiling) {
  Backoff b({milliseconds(100), milliseconds(1000), 2.0});
  const int64_t ceilings[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (int64_t ceiling : ceilings) {
    const auto d = b.Next().count();
    EXPECT_GE(d, ceiling / 2);
    EXPECT_LE(d, ceiling);
  }
}

TEST(BackoffTest, ResetStartsOver) {
  Backoff b({milliseconds(100), milliseconds(10000), 2.0});
  for (int i = 0; i < 6; ++i) b.Next();
  b.Reset();
  EXPECT_LE(b.Next().count(), 100);
}

}  // namespace
}  // namespace sweepd::agent
