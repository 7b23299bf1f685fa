// Starts the real qfarm binaries from tests: a child process with its stdout
// piped to the test, stderr to a file, and kill-by-PID cleanup.
//
//   auto p = Subprocess::Start({BinPath("qfarm-coordinator"),
//                               "--listen=127.0.0.1:0"});
//   absl::StatusOr<std::string> line = (*p)->ReadLine(absl::Seconds(10));
//   (*p)->Signal(SIGTERM);
//   EXPECT_EQ((*p)->Wait(), 0);
//
// Thread-compatible. The destructor kills (SIGKILL) and reaps a child that
// is still running, so a failing test leaves nothing behind.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace qfarm::testing {

// The path of a qfarm binary in the build tree.
std::string BinPath(const std::string& name);

class Subprocess {
 public:
  struct Options {
    // Written to the child's stdin, which is then closed.
    std::string stdin_data;
    // Where the child's stderr goes; empty: inherited.
    std::string stderr_path;
    // Extra NAME=VALUE entries for the child's environment.
    std::vector<std::string> env;
  };

  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv, const Options& options);
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv) {
    return Start(argv, Options{});
  }

  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }

  // The next line of stdout, without the newline. DEADLINE_EXCEEDED after
  // `timeout`, OUT_OF_RANGE at end of output.
  absl::StatusOr<std::string> ReadLine(absl::Duration timeout);
  // Everything left on stdout until the child closes it.
  std::string ReadAll();

  void Signal(int sig);
  // Waits for the child; returns its exit code, or 128+signal.
  int Wait();
  // Waits at most `timeout`; DEADLINE_EXCEEDED if still running.
  absl::StatusOr<int> WaitFor(absl::Duration timeout);

 private:
  Subprocess() = default;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
  bool reaped_ = false;
  int exit_code_ = -1;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Its exit code, stdout and stderr, for a failure message.
std::string Diagnose(const CommandResult& r);

// The job id in `qfarm map`'s summary ("job 12 on HOST:PORT: ..."); 0 when
// there is none.
uint64_t MapJobId(const std::string& err);

// Runs a command to completion (stderr captured through a temp file).
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::string& stdin_data = "",
                         const std::vector<std::string>& env = {});

// A fresh directory under $TEST_TMPDIR or /tmp, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace qfarm::testing
