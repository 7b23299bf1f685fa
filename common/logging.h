// A small logging layer: leveled lines on stderr, and CHECK for broken
// invariants (which are bugs and stop the process).
//
//   QFARM_LOG(INFO) << "worker " << id << " connected";
//   QFARM_CHECK(slots > 0) << "slots must be positive";
//
// Thread-safe: each line is written with one write(2).
#pragma once

#include <sstream>

namespace qfarm {

enum class LogLevel {
  kDebug = 0,
  kInfo = 1,
  kWarning = 2,
  kError = 3,
  kFatal = 4
};

// Lines below this level are dropped. Default kInfo; $QFARM_LOG_LEVEL
// (debug|info|warning|error) overrides it at start-up.
void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();

namespace internal {

class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();  // Writes the line; aborts for kFatal.
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;

  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

// Swallows the stream when a line is disabled.
struct LogVoidify {
  void operator&(std::ostream&) {}
};

}  // namespace internal
}  // namespace qfarm

#define QFARM_LOG_LEVEL_DEBUG ::qfarm::LogLevel::kDebug
#define QFARM_LOG_LEVEL_INFO ::qfarm::LogLevel::kInfo
#define QFARM_LOG_LEVEL_WARNING ::qfarm::LogLevel::kWarning
#define QFARM_LOG_LEVEL_ERROR ::qfarm::LogLevel::kError
#define QFARM_LOG_LEVEL_FATAL ::qfarm::LogLevel::kFatal

#define QFARM_LOG(severity)                                           \
  (QFARM_LOG_LEVEL_##severity < ::qfarm::MinLogLevel())               \
      ? (void)0                                                       \
      : ::qfarm::internal::LogVoidify() &                             \
            ::qfarm::internal::LogMessage(QFARM_LOG_LEVEL_##severity, \
                                          __FILE__, __LINE__)         \
                .stream()

#define QFARM_CHECK(condition)                                               \
  (condition) ? (void)0                                                      \
              : ::qfarm::internal::LogVoidify() &                            \
                    ::qfarm::internal::LogMessage(::qfarm::LogLevel::kFatal, \
                                                  __FILE__, __LINE__)        \
                            .stream()                                        \
                        << "Check failed: " #condition " "
