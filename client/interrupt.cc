#include "client/interrupt.h"

#include <utility>

namespace qfarm::client {

bool Interrupt::Fire() {
  // The handler runs under mu_ so ClearHandler() can wait for it.
  absl::MutexLock lock(&mu_);
  fired_ = true;
  if (!handler_ || handled_) return false;
  handled_ = true;
  handler_();
  return true;
}

bool Interrupt::fired() const {
  absl::MutexLock lock(&mu_);
  return fired_;
}

void Interrupt::SetHandler(std::function<void()> handler) {
  absl::MutexLock lock(&mu_);
  handler_ = std::move(handler);
  handled_ = false;
  if (fired_ && handler_) {
    handled_ = true;
    handler_();
  }
}

void Interrupt::ClearHandler() {
  absl::MutexLock lock(&mu_);
  handler_ = nullptr;
}

}  // namespace qfarm::client
