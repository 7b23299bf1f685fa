// Bounds for integration tests that must bound time: generous on a normal
// build, and scaled where the binaries run slower.
//
//   EXPECT_LE(elapsed, Scaled(absl::Seconds(1)));
//
// The scale is 5 in a sanitizer build (ASan+UBSan or TSan: the binaries a
// test starts are built the same way), 1 otherwise, multiplied by
// $QFARM_TEST_TIME_SCALE when it holds a positive integer (a slow machine).
#pragma once

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"

namespace qfarm::testing {

inline int TimeScale() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  int scale = 5;
#else
  int scale = 1;
#endif
  const char* env = std::getenv("QFARM_TEST_TIME_SCALE");
  int extra = 0;
  if (env != nullptr && absl::SimpleAtoi(env, &extra) && extra > 0) {
    scale *= extra;
  }
  return scale;
}

inline absl::Duration Scaled(absl::Duration d) { return d * TimeScale(); }

}  // namespace qfarm::testing
