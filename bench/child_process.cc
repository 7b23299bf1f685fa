#include "bench/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errno_text.h"

namespace qfarm::bench {
namespace {

int PollTimeoutMs(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1'000'000));
}

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::vector<std::string>& argv, const Options& options) {
  if (argv.empty()) return absl::InvalidArgumentError("no program to start");
  int out[2] = {-1, -1};
  if (options.pipe_stdout && pipe2(out, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", ErrnoText(errno)));
  }
  // Everything the child needs is prepared before fork.
  std::vector<char*> args;
  for (const std::string& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const std::string err_path =
      options.stderr_path.empty() ? "/dev/null" : options.stderr_path;

  const pid_t pid = fork();
  if (pid < 0) {
    if (out[0] >= 0) {
      close(out[0]);
      close(out[1]);
    }
    return absl::InternalError(absl::StrCat("fork: ", ErrnoText(errno)));
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    const int err_fd =
        open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    dup2(null_fd, STDIN_FILENO);
    dup2(out[1] >= 0 ? out[1] : null_fd, STDOUT_FILENO);
    dup2(err_fd >= 0 ? err_fd : null_fd, STDERR_FILENO);
    // Signals blocked by the parent (qfarm blocks SIGINT/SIGTERM to wait for
    // them on a thread) must not stay blocked in the child.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  std::unique_ptr<ChildProcess> child(new ChildProcess);
  child->pid_ = pid;
  child->pidfd_ = PidfdOpen(pid);
  if (out[1] >= 0) close(out[1]);
  child->stdout_fd_ = out[0];
  return child;
}

ChildProcess::~ChildProcess() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    (void)WaitFor(absl::Seconds(10));
  }
  if (stdout_fd_ >= 0) close(stdout_fd_);
  if (pidfd_ >= 0) close(pidfd_);
}

absl::Status ChildProcess::Fill(absl::Time deadline, bool* eof) {
  *eof = false;
  if (stdout_fd_ < 0) {
    *eof = true;
    return absl::OkStatus();
  }
  struct pollfd p = {.fd = stdout_fd_, .events = POLLIN, .revents = 0};
  const int ready = poll(&p, 1, PollTimeoutMs(deadline));
  if (ready == 0) return absl::DeadlineExceededError("no output in time");
  if (ready < 0) {
    if (errno == EINTR) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("poll: ", ErrnoText(errno)));
  }
  char chunk[65536];
  const ssize_t n = read(stdout_fd_, chunk, sizeof(chunk));
  if (n < 0 && errno == EINTR) return absl::OkStatus();
  if (n <= 0) {
    *eof = true;
    return absl::OkStatus();
  }
  buffer_.append(chunk, static_cast<size_t>(n));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ChildProcess::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const size_t newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      return line;
    }
    bool eof = false;
    absl::Status filled = Fill(deadline, &eof);
    if (!filled.ok()) return filled;
    if (eof) return absl::OutOfRangeError("end of output");
  }
}

absl::StatusOr<std::string> ChildProcess::ReadAll(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    bool eof = false;
    absl::Status filled = Fill(deadline, &eof);
    if (!filled.ok()) return filled;
    if (eof) break;
  }
  std::string all;
  all.swap(buffer_);
  return all;
}

void ChildProcess::Signal(int sig) {
  if (!reaped_ && pid_ > 0) kill(pid_, sig);
}

absl::StatusOr<int> ChildProcess::WaitFor(absl::Duration timeout) {
  if (reaped_) return exit_code_;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    struct rusage ru = {};
    const pid_t done = wait4(pid_, &status, WNOHANG, &ru);
    if (done == pid_) {
      reaped_ = true;
      lifetime_ = FromRusage(ru);
      exit_code_ = WIFEXITED(status)     ? WEXITSTATUS(status)
                   : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                         : -1;
      return exit_code_;
    }
    if (done < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("wait4: ", ErrnoText(errno)));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid_, " still runs"));
    }
    if (pidfd_ >= 0) {
      // Readable once the child has exited.
      struct pollfd p = {.fd = pidfd_, .events = POLLIN, .revents = 0};
      poll(&p, 1, PollTimeoutMs(deadline));
    } else {
      // No pidfd (old kernel): check again shortly.
      struct timespec pause = {.tv_sec = 0, .tv_nsec = 5'000'000};
      nanosleep(&pause, nullptr);
    }
  }
}

int ChildProcess::Stop(absl::Duration grace) {
  Signal(SIGTERM);
  absl::StatusOr<int> code = WaitFor(grace);
  if (code.ok()) return *code;
  Signal(SIGKILL);
  code = WaitFor(absl::Seconds(10));
  return code.ok() ? *code : -1;
}

}  // namespace qfarm::bench
