// Facts about the running process.
#pragma once

#include <string>

namespace qfarm {

// The exit codes of every qfarm binary: done, failed, bad usage.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// The running binary (/proc/self/exe); empty if it cannot be read.
std::string SelfPath();

// The directory of the running binary, where qfarm's other binaries are;
// "." if it cannot be read.
std::string SelfDirectory();

// Turns off Abseil's Mutex deadlock detection, which Debian's Abseil (built
// without NDEBUG) keeps on: a lock graph updated on every lock, 3x the cost
// of a lock pair. A binary's entry point calls it first, so the binaries
// run like a release build; tests keep the detection.
void TurnOffMutexDeadlockDetection();

}  // namespace qfarm
