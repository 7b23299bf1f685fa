// The write side of a server stream that sends one message at a time, as
// gRPC requires: what every streaming reactor of the coordinator shares.
//
// A subclass says what to send next (FillNext(), under the loop's lock mu_,
// which it may use for its own state) and the loop starts the write outside
// the lock. The loop owns the paths where streams used to hang:
//   - Close() during a write finishes the stream once that write completes;
//   - a failed write finishes the stream (UNAVAILABLE), also one already
//     closing;
//   - Finish() is called exactly once, never under the lock.
//
//   class Watch : public ServerStream<grpc::ServerWriteReactor<Batch>, Batch> {
//     Fill FillNext(Batch* out) override { ...; return Fill::kMessage; }
//   };
//   watch->Pump();        // whenever something may be ready to send
//   watch->Close(status); // ends it after the write in flight
//
// WriteLoop is the logic, with StartWriteOf()/FinishWith() left to the
// transport: ServerStream binds them to a gRPC reactor; tests bind them to a
// fake. Thread-safe: Pump(), Close() and WriteDone() may be called from any
// thread, concurrently.
#pragma once

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/stream_birth.h"

namespace qfarm::coordinator {

// Orders the thread that starts a read or a write before the one that
// completes it. gRPC orders them too, but inside its own code, where
// ThreadSanitizer cannot see it; without this, the message handed over
// looks raced. gRPC never completes a read or write inline, so the
// completion cannot wait on its own thread.
//   read_handoff_.Start([this] { StartRead(&request_); });
//   void OnReadDone(bool ok) override { read_handoff_.Arrived(); ... }
class Handoff {
 public:
  // Runs `start` (StartRead(), StartWrite()) holding the hand-off lock.
  template <typename Operation>
  void Start(Operation start) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    start();
  }
  // Returns once the Start() that began the completed operation has
  // returned.
  void Arrived() ABSL_LOCKS_EXCLUDED(mu_) {
    StreamBirth::Seen();
    absl::MutexLock lock(&mu_);
  }

 private:
  absl::Mutex mu_;
};

template <typename Message>
class WriteLoop {
 public:
  virtual ~WriteLoop() = default;

  // What FillNext() did.
  enum class Fill {
    kMessage,  // Filled `out`: send it.
    kIdle,     // Nothing to send now; a later Pump() will ask again.
    kFinish,   // Nothing more ever: finish with `finish_status`.
  };

  // Starts a write if none is in flight and FillNext() has a message;
  // finishes the stream if FillNext() says so. No effect once closing.
  void Pump() ABSL_LOCKS_EXCLUDED(mu_) {
    Step step;
    {
      absl::MutexLock lock(&mu_);
      step = NextStepLocked();
    }
    Run(step);
  }

  // Ends the stream with `status`: at once when no write is in flight,
  // otherwise when it completes. With `drain`, messages FillNext() still has
  // go out first (an OK status only; an error drops them). Later calls have
  // no effect.
  void Close(const absl::Status& status, bool drain = false)
      ABSL_LOCKS_EXCLUDED(mu_) {
    Step step;
    {
      absl::MutexLock lock(&mu_);
      if (closing_) return;
      closing_ = true;
      draining_ = drain && status.ok();
      close_status_ = status;
      step = NextStepLocked();
    }
    Run(step);
  }

  // The write started last completed (`ok`) or failed. The transport calls
  // it once per StartWriteOf().
  void WriteDone(bool ok) ABSL_LOCKS_EXCLUDED(mu_) {
    // From here the message is this loop's alone: nothing else touches it
    // while writing_ is set.
    write_handoff_.Arrived();
    OnSent(&out_);
    Step step;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        // Also when a Close() was waiting for this write: the write failed,
        // so the stream is over either way.
        if (!closing_) close_status_ = WriteFailedStatus();
        closing_ = true;
        draining_ = false;
      }
      step = NextStepLocked();
    }
    Run(step);
  }

  // Whether Close() was called or a write failed.
  bool closing() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return closing_;
  }

 protected:
  // Fills `out` (cleared by the subclass as it needs) with the next message.
  // Called under mu_, never while a write is in flight. After Close(), only
  // when draining.
  virtual Fill FillNext(Message* out, absl::Status* finish_status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  // The message written (or not) by the last write, before the next fill,
  // without mu_ held: to take back what it borrowed.
  virtual void OnSent(Message* /*sent*/) {}
  // Called without mu_ after every Pump(), Close() and WriteDone(): for work
  // FillNext() left for outside the lock.
  virtual void AfterUnlock() {}
  // The status a failed write finishes the stream with.
  virtual absl::Status WriteFailedStatus() const {
    return absl::UnavailableError("the peer went away");
  }

  // The transport: start writing `message` (one at a time; the loop
  // guarantees it), and finish the stream (exactly once).
  virtual void StartWriteOf(const Message* message) = 0;
  virtual void FinishWith(const absl::Status& status) = 0;

  // The message of the last write, for a subclass's destructor to take back
  // what it borrowed (no write is in flight once the stream is done).
  Message* last_message() { return &out_; }

  mutable absl::Mutex mu_;

 private:
  enum class Action { kNone, kWrite, kFinish };
  struct Step {
    Action action = Action::kNone;
    absl::Status status;
  };

  Step NextStepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return {};
    Step step;
    if (!closing_ || draining_) {
      absl::Status finish_status;
      switch (FillNext(&out_, &finish_status)) {
        case Fill::kMessage:
          writing_ = true;
          step.action = Action::kWrite;
          return step;
        case Fill::kIdle:
          if (!closing_) return step;
          break;  // Drained: finish below.
        case Fill::kFinish:
          if (!closing_) close_status_ = std::move(finish_status);
          closing_ = true;
          break;
      }
    }
    finished_ = true;
    step.action = Action::kFinish;
    step.status = close_status_;
    return step;
  }

  void Run(const Step& step) ABSL_LOCKS_EXCLUDED(mu_) {
    if (step.action == Action::kWrite) {
      write_handoff_.Start([this] { StartWriteOf(&out_); });
    }
    if (step.action == Action::kFinish) FinishWith(step.status);
    AfterUnlock();
  }

  Handoff write_handoff_;  // Of `out_`, from StartWriteOf() to WriteDone().
  // The message being written; only the write in flight uses it.
  Message out_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
};

// A WriteLoop bound to a gRPC callback reactor (ServerWriteReactor<Message>
// or ServerBidiReactor<Request, Message>).
template <typename Reactor, typename Message>
class ServerStream : public Reactor, public WriteLoop<Message> {
 public:
  void OnWriteDone(bool ok) override { this->WriteDone(ok); }

 protected:
  void StartWriteOf(const Message* message) override {
    this->StartWrite(message);
  }
  void FinishWith(const absl::Status& status) override {
    this->Finish(ToGrpcStatus(status));
  }
};

// A call refused before it started: finishes at once with the status and
// deletes itself when gRPC is done with it.
template <typename Reactor>
class Refused final : public Reactor {
 public:
  explicit Refused(const absl::Status& status) {
    this->Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

}  // namespace qfarm::coordinator
