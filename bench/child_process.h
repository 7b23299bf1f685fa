// A child process that `qfarm bench` starts (a coordinator, a worker, the
// Python script) and stops by its PID. Reaped with wait4(2), so its
// lifetime CPU time, context switches and peak RSS are known afterwards.
//
//   auto child = ChildProcess::Start({bin, "--listen=127.0.0.1:0"},
//                                    {.stderr_path = log, .pipe_stdout =
//                                    true});
//   absl::StatusOr<std::string> line = (*child)->ReadLine(absl::Seconds(10));
//   (*child)->Signal(SIGTERM);
//   absl::StatusOr<int> code = (*child)->WaitFor(absl::Seconds(10));
//
// Thread-compatible. The destructor kills (SIGKILL) and reaps a child that
// is still running.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/usage.h"

namespace qfarm::bench {

class ChildProcess {
 public:
  struct Options {
    // Where stderr goes; empty: /dev/null.
    std::string stderr_path;
    // Pipe stdout to ReadLine()/ReadAll(); otherwise /dev/null.
    bool pipe_stdout = false;
  };

  // argv[0] is the program's path. INTERNAL when fork or exec fails (an
  // exec failure shows as exit code 127).
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      const std::vector<std::string>& argv, const Options& options);

  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool reaped() const { return reaped_; }

  // The next line of stdout without the newline. DEADLINE_EXCEEDED after
  // `timeout`, OUT_OF_RANGE at the end of the output.
  absl::StatusOr<std::string> ReadLine(absl::Duration timeout);
  // Everything left on stdout until the child closes it, or until
  // `timeout` (DEADLINE_EXCEEDED).
  absl::StatusOr<std::string> ReadAll(absl::Duration timeout);

  // Sends `sig` unless the child has been reaped.
  void Signal(int sig);

  // Waits for the child to exit, up to `timeout`. Returns its exit code, or
  // 128 + the signal that ended it; DEADLINE_EXCEEDED if it still runs.
  absl::StatusOr<int> WaitFor(absl::Duration timeout);

  // SIGTERM, then SIGKILL if it has not exited after `grace`. Returns the
  // exit code.
  int Stop(absl::Duration grace);

  // CPU, context switches and peak RSS over the child's life (its reaped
  // children included). Zero until reaped.
  const Usage& lifetime_usage() const { return lifetime_; }

 private:
  ChildProcess() = default;
  // Reads what stdout has until `deadline`; false at EOF.
  absl::Status Fill(absl::Time deadline, bool* eof);

  pid_t pid_ = -1;
  int pidfd_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
  bool reaped_ = false;
  int exit_code_ = -1;
  Usage lifetime_;
};

}  // namespace qfarm::bench
