// Termination signals for binaries: SIGINT and SIGTERM are blocked in every
// thread and received by one waiting thread, so handlers may do anything
// (take locks, shut servers down) instead of only async-signal-safe work.
//
//   BlockTerminationSignals();            // first thing in main()
//   ... start threads and servers ...
//   int sig = WaitForTerminationSignal(); // returns SIGINT or SIGTERM
#pragma once

namespace qfarm {

// Blocks SIGINT and SIGTERM in the calling thread and in threads it starts
// afterwards. Call before starting any thread.
void BlockTerminationSignals();

// Undoes BlockTerminationSignals() in the calling thread: for a process
// about to exec a program that expects the default disposition.
void UnblockTerminationSignals();

// Blocks until SIGINT or SIGTERM arrives; returns the signal number.
int WaitForTerminationSignal();

}  // namespace qfarm
