// A one-shot event for Ctrl-C: main() fires it from its signal thread, and
// the running command decides what it means (cancel the job it watches).
//
// Thread-safe. The handler runs at most once, on the firing thread, or at
// once on the registering thread when the event has already fired.
#pragma once

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace qfarm::client {

class Interrupt {
 public:
  // Returns whether a handler ran.
  bool Fire();
  bool fired() const;
  void SetHandler(std::function<void()> handler);
  // After it returns, the handler is not running and will not run.
  void ClearHandler();

 private:
  mutable absl::Mutex mu_;
  bool fired_ ABSL_GUARDED_BY(mu_) = false;
  bool handled_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> handler_ ABSL_GUARDED_BY(mu_);
};

// Clears the handler when it goes out of scope.
class ScopedInterruptHandler {
 public:
  ScopedInterruptHandler(Interrupt* interrupt, std::function<void()> handler)
      : interrupt_(interrupt) {
    if (interrupt_ != nullptr) interrupt_->SetHandler(std::move(handler));
  }
  ~ScopedInterruptHandler() {
    if (interrupt_ != nullptr) interrupt_->ClearHandler();
  }
  ScopedInterruptHandler(const ScopedInterruptHandler&) = delete;
  ScopedInterruptHandler& operator=(const ScopedInterruptHandler&) = delete;

 private:
  Interrupt* interrupt_;
};

}  // namespace qfarm::client
