// StreamBirth: orders a gRPC callback reactor's construction before its
// reactions, for ThreadSanitizer. Shared by the coordinator's streams and
// the client library's callback calls.
#pragma once

#include <atomic>
#include <cstdint>

namespace qfarm {

// Orders a stream's construction, on the gRPC thread that ran the service
// method (or started the call), before its reactions, on other gRPC threads.
// gRPC orders them through its completion queue, inside its own code, where
// ThreadSanitizer cannot see it: without this, a reaction's first access to the
// new stream (the first lock of one of its mutexes, an atomic member) looks
// raced with the stream's allocation. Published() once the stream is built
// and before it starts any operation; Seen() first thing in each reaction
// (Handoff::Arrived() calls it). A global release/acquire pair, so that
// nothing of the new object is touched to synchronize; compiled only under
// ThreadSanitizer (it orders nothing the hardware does not already).
class StreamBirth {
 public:
  static void Published() {
#if defined(__SANITIZE_THREAD__)
    births_.fetch_add(1, std::memory_order_release);
#endif
  }
  static void Seen() {
#if defined(__SANITIZE_THREAD__)
    (void)births_.load(std::memory_order_acquire);
#endif
  }

 private:
#if defined(__SANITIZE_THREAD__)
  static inline std::atomic<uint64_t> births_{0};
#endif
};

}  // namespace qfarm
