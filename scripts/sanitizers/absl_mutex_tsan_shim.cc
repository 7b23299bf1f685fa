// ThreadSanitizer support for Debian's uninstrumented Abseil.
//
// Debian builds libabsl_synchronization without -fsanitize=thread, so TSan
// never sees an absl::Mutex acquire or release anything and reports each
// access that one guards as a data race (about 840 reports over executors_test
// and scheduler_test). This library defines the out-of-line entry points of
// absl::Mutex, CondVar, Notification, BlockingCounter and Barrier. Each calls
// the real function of libabsl_synchronization (the next definition of the
// same symbol, found with dlsym(RTLD_NEXT)) between the __tsan_mutex_*
// annotations Abseil makes itself when built with TSan (see its mutex.cc).
// TSan then treats an absl::Mutex as a mutex: happens-before edges, the held
// locks in reports, lock-order inversions, destruction while locked.
//
// Use: the top-level CMakeLists.txt builds it when QFARM_SANITIZE contains
// "thread" and links it first into every target, so it comes before
// libabsl_synchronization in symbol lookup. Abseil's calls to its own Mutex
// functions (Notification -> Mutex::Lock, ...) go through the PLT and land
// here too. LD_PRELOAD works as well. The shim is not instrumented; in a
// process without TSan, or with QFARM_ABSL_TSAN_SHIM=0, it only forwards.
//
// Limits:
// - A Condition is evaluated inside the lock operation, where TSan ignores
//   memory accesses: a race inside a predicate body is not reported
//   (Abseil's own TSan build checks predicates; the edges are the same).
// - Written against Abseil LTS 20220623: another release fails to compile
//   here until the wrapped signatures and the lock-word bits are checked.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "absl/base/config.h"
#include "absl/synchronization/barrier.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

#if ABSL_LTS_RELEASE_VERSION != 20220623
#error "Written for Abseil LTS 20220623: check the wrappers against mutex.h"
#endif

// Weak, so that the shim loads into a process without TSan (a child started
// with LD_PRELOAD, say): the functions are then null and nothing is
// annotated.
#pragma weak __tsan_mutex_destroy
#pragma weak __tsan_mutex_pre_lock
#pragma weak __tsan_mutex_post_lock
#pragma weak __tsan_mutex_pre_unlock
#pragma weak __tsan_mutex_post_unlock
#pragma weak __tsan_acquire
#pragma weak __tsan_release

namespace {

[[noreturn]] void Die(const char* what, const char* detail) {
  std::fprintf(stderr, "absl_mutex_tsan_shim: %s: %s\n", what,
               detail != nullptr ? detail : "(null)");
  std::abort();
}

// Whether to annotate: in a TSan process, unless QFARM_ABSL_TSAN_SHIM=0
// (to see what TSan reports without the shim).
bool Tsan() {
  static const bool annotate = [] {
    const char* setting = std::getenv("QFARM_ABSL_TSAN_SHIM");
    return &__tsan_mutex_pre_lock != nullptr &&
           (setting == nullptr || std::strcmp(setting, "0") != 0);
  }();
  return annotate;
}

// Itanium C++ ABI: a pointer to a non-virtual member function is the
// function's address followed by a `this` adjustment.
template <typename Pmf>
const void* CodeAddress(Pmf pmf) {
  static_assert(sizeof(Pmf) == 2 * sizeof(void*));
  const void* address;
  std::memcpy(&address, &pmf, sizeof(address));
  return address;
}

// The next definition of `symbol` after this library: Abseil's.
void* Next(const char* symbol) {
  void* next = dlsym(RTLD_NEXT, symbol);
  if (next == nullptr) Die("no definition after the shim", symbol);
  return next;
}

// The mangled name of one of our own definitions.
const char* SymbolOf(const void* code) {
  Dl_info info;
  if (dladdr(code, &info) == 0 || info.dli_sname == nullptr) {
    Die("cannot name a wrapper", dlerror());
  }
  return info.dli_sname;
}

// The real function behind the member function `pmf` defined below, cast to
// the plain function type F (`this` becomes the first argument). Resolved
// once; the race of two first callers is benign (same value).
template <typename F, typename Pmf>
F RealOf(F* slot, Pmf pmf) {
  F f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (f == nullptr) {
    void* next = Next(SymbolOf(CodeAddress(pmf)));
    std::memcpy(&f, &next, sizeof(f));
    __atomic_store_n(slot, f, __ATOMIC_RELEASE);
  }
  return f;
}

#define REAL(type, pmf)              \
  ([]() {                            \
    using Fn = type;                 \
    static Fn slot = nullptr;        \
    return RealOf<Fn>(&slot, (pmf)); \
  }())

// Keeps a lock operation that Abseil implements with another of the wrapped
// functions on the same mutex (AwaitWithTimeout -> AwaitWithDeadline, ...)
// from being annotated twice.
__attribute__((tls_model("initial-exec"))) thread_local const void* tls_op =
    nullptr;

class Op {
 public:
  explicit Op(const void* mu)
      : previous_(tls_op), annotate_(tls_op != mu && Tsan()) {
    tls_op = mu;
  }
  ~Op() { tls_op = previous_; }
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;

  bool annotate() const { return annotate_; }

 private:
  const void* previous_;
  bool annotate_;
};

// absl::Mutex is one word, mu_ (mutex.cc): kMuWriter is set while a writer
// holds it, kMuReader while readers do. Checked at load by SelfCheck().
constexpr intptr_t kMuReader = 0x0001;
constexpr intptr_t kMuWriter = 0x0008;
static_assert(sizeof(absl::Mutex) == sizeof(intptr_t));

intptr_t Word(const absl::Mutex* mu) {
  return __atomic_load_n(reinterpret_cast<const intptr_t*>(mu),
                         __ATOMIC_RELAXED);
}

// The TSan flags for the mode in which the calling thread holds `mu`.
unsigned HeldFlags(const absl::Mutex* mu) {
  return (Word(mu) & kMuWriter) != 0 ? 0u : unsigned{__tsan_mutex_read_lock};
}

// Around a call that releases `mu` and takes it again (Await, CondVar::Wait).
class Reacquire {
 public:
  Reacquire(absl::Mutex* mu, const Op& op)
      : mu_(mu), annotate_(op.annotate()), flags_(0) {
    if (!annotate_) return;
    flags_ = HeldFlags(mu);
    __tsan_mutex_pre_unlock(mu_, flags_);
  }
  ~Reacquire() {
    if (!annotate_) return;
    __tsan_mutex_post_unlock(mu_, flags_);
    __tsan_mutex_pre_lock(mu_, flags_);
    __tsan_mutex_post_lock(mu_, flags_, 0);
  }
  Reacquire(const Reacquire&) = delete;
  Reacquire& operator=(const Reacquire&) = delete;

 private:
  absl::Mutex* mu_;
  bool annotate_;
  unsigned flags_;
};

// Around a call that takes `mu` (flags: read lock, try lock).
template <typename Call>
auto Locking(absl::Mutex* mu, unsigned flags, Call call) {
  Op op(mu);
  if (op.annotate()) __tsan_mutex_pre_lock(mu, flags);
  auto result = call();
  if (op.annotate()) {
    const bool failed =
        (flags & __tsan_mutex_try_lock) != 0 && !static_cast<bool>(result);
    __tsan_mutex_post_lock(
        mu, flags | (failed ? unsigned{__tsan_mutex_try_lock_failed} : 0u), 0);
  }
  return result;
}

template <typename Call>
void Unlocking(absl::Mutex* mu, unsigned flags, Call call) {
  Op op(mu);
  if (op.annotate()) __tsan_mutex_pre_unlock(mu, flags);
  call();
  if (op.annotate()) __tsan_mutex_post_unlock(mu, flags);
}

// Plain functions for the destructor, whose address C++ cannot take.
using Destructor = void (*)(absl::Mutex*);
Destructor real_mutex_destructor = nullptr;

Destructor RealMutexDestructor() {
  Destructor f = __atomic_load_n(&real_mutex_destructor, __ATOMIC_ACQUIRE);
  if (f == nullptr) {
    // "_ZN4absl<ns>5Mutex4LockEv" -> "_ZN4absl<ns>5MutexD1Ev".
    std::string name = SymbolOf(CodeAddress(&absl::Mutex::Lock));
    const std::string lock = "4LockEv";
    if (name.size() <= lock.size() ||
        name.compare(name.size() - lock.size(), lock.size(), lock) != 0) {
      Die("unexpected symbol for Mutex::Lock", name.c_str());
    }
    name.replace(name.size() - lock.size(), lock.size(), "D1Ev");
    void* next = Next(name.c_str());
    std::memcpy(&f, &next, sizeof(f));
    __atomic_store_n(&real_mutex_destructor, f, __ATOMIC_RELEASE);
  }
  return f;
}

using Plain = void (*)(absl::Mutex*);
using Try = bool (*)(absl::Mutex*);
using When = void (*)(absl::Mutex*, const absl::Condition&);
using WhenFor = bool (*)(absl::Mutex*, const absl::Condition&, absl::Duration);
using WhenUntil = bool (*)(absl::Mutex*, const absl::Condition&, absl::Time);

// Checks the lock-word bits HeldFlags() relies on, with the real functions,
// before anything else runs. Only under TSan: elsewhere the shim may be
// preloaded into a program without Abseil, and nothing calls it.
__attribute__((constructor)) void SelfCheck() {
  if (!Tsan()) return;
  alignas(absl::Mutex) static unsigned char storage[sizeof(absl::Mutex)];
  absl::Mutex* mu = new (storage) absl::Mutex;  // never destroyed
  REAL(Plain, &absl::Mutex::Lock)(mu);
  const intptr_t written = Word(mu);
  REAL(Plain, &absl::Mutex::Unlock)(mu);
  REAL(Plain, &absl::Mutex::ReaderLock)(mu);
  const intptr_t read = Word(mu);
  REAL(Plain, &absl::Mutex::ReaderUnlock)(mu);
  if ((written & kMuWriter) == 0 || (read & kMuWriter) != 0 ||
      (read & kMuReader) == 0) {
    Die("absl::Mutex lock word differs from what the shim expects",
        "check kMuWriter and kMuReader against mutex.cc");
  }
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

// absl::Mutex.

void Mutex::Lock() {
  Locking(this, 0, [this] {
    REAL(Plain, &Mutex::Lock)(this);
    return true;
  });
}

void Mutex::ReaderLock() {
  Locking(this, __tsan_mutex_read_lock, [this] {
    REAL(Plain, &Mutex::ReaderLock)(this);
    return true;
  });
}

bool Mutex::TryLock() {
  return Locking(this, __tsan_mutex_try_lock,
                 [this] { return REAL(Try, &Mutex::TryLock)(this); });
}

bool Mutex::ReaderTryLock() {
  return Locking(this, __tsan_mutex_try_read_lock,
                 [this] { return REAL(Try, &Mutex::ReaderTryLock)(this); });
}

void Mutex::Unlock() {
  Unlocking(this, 0, [this] { REAL(Plain, &Mutex::Unlock)(this); });
}

void Mutex::ReaderUnlock() {
  Unlocking(this, __tsan_mutex_read_lock, [this] {
    REAL(Plain, &Mutex::ReaderUnlock)(this);
  });
}

void Mutex::LockWhen(const Condition& cond) {
  Locking(this, 0, [&] {
    REAL(When, &Mutex::LockWhen)(this, cond);
    return true;
  });
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  Locking(this, __tsan_mutex_read_lock, [&] {
    REAL(When, &Mutex::ReaderLockWhen)(this, cond);
    return true;
  });
}

// The *WithTimeout / *WithDeadline variants hold the lock on return whether
// or not the condition became true.
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  return Locking(this, 0, [&] {
    return REAL(WhenFor, &Mutex::LockWhenWithTimeout)(this, cond, timeout);
  });
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  return Locking(this, 0, [&] {
    return REAL(WhenUntil, &Mutex::LockWhenWithDeadline)(this, cond, deadline);
  });
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  return Locking(this, __tsan_mutex_read_lock, [&] {
    return REAL(WhenFor, &Mutex::ReaderLockWhenWithTimeout)(this, cond,
                                                            timeout);
  });
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  return Locking(this, __tsan_mutex_read_lock, [&] {
    return REAL(WhenUntil, &Mutex::ReaderLockWhenWithDeadline)(this, cond,
                                                               deadline);
  });
}

void Mutex::Await(const Condition& cond) {
  Op op(this);
  Reacquire reacquire(this, op);
  REAL(When, &Mutex::Await)(this, cond);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  Op op(this);
  Reacquire reacquire(this, op);
  return REAL(WhenFor, &Mutex::AwaitWithTimeout)(this, cond, timeout);
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  Op op(this);
  Reacquire reacquire(this, op);
  return REAL(WhenUntil, &Mutex::AwaitWithDeadline)(this, cond, deadline);
}

// Forgets the mutex, so that a new one at the same address starts clean.
Mutex::~Mutex() {
  RealMutexDestructor()(this);
  if (Tsan()) __tsan_mutex_destroy(this, 0);
}

// absl::CondVar: Wait releases the mutex and takes it again.

void CondVar::Wait(Mutex* mu) {
  Op op(mu);
  Reacquire reacquire(mu, op);
  REAL(void (*)(CondVar*, Mutex*), &CondVar::Wait)(this, mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  Op op(mu);
  Reacquire reacquire(mu, op);
  return REAL(bool (*)(CondVar*, Mutex*, Duration), &CondVar::WaitWithTimeout)(
      this, mu, timeout);
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  Op op(mu);
  Reacquire reacquire(mu, op);
  return REAL(bool (*)(CondVar*, Mutex*, Time), &CondVar::WaitWithDeadline)(
      this, mu, deadline);
}

// absl::Notification: a waiter that finds it already notified returns
// without touching the mutex, so Notify releases and the waits acquire on
// the object itself, and on the flag that the inline HasBeenNotified() loads
// with acquire order (the member after the one-word mutex_).

namespace {
void* NotifiedFlag(const Notification* n) {
  return const_cast<char*>(reinterpret_cast<const char*>(n)) + sizeof(Mutex);
}
static_assert(sizeof(Notification) == sizeof(Mutex) + sizeof(intptr_t));
}  // namespace

void Notification::Notify() {
  if (Tsan()) {
    __tsan_release(this);
    __tsan_release(NotifiedFlag(this));
  }
  REAL(void (*)(Notification*), &Notification::Notify)(this);
}

void Notification::WaitForNotification() const {
  REAL(void (*)(const Notification*), &Notification::WaitForNotification)(this);
  if (Tsan()) __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  const bool notified =
      REAL(bool (*)(const Notification*, Duration),
           &Notification::WaitForNotificationWithTimeout)(this, timeout);
  if (notified && Tsan()) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  const bool notified =
      REAL(bool (*)(const Notification*, Time),
           &Notification::WaitForNotificationWithDeadline)(this, deadline);
  if (notified && Tsan()) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

// absl::BlockingCounter and absl::Barrier count with atomics of their own
// before touching their mutex: every arrival releases, the waiters acquire.

bool BlockingCounter::DecrementCount() {
  if (Tsan()) __tsan_release(this);
  const bool last =
      REAL(bool (*)(BlockingCounter*), &BlockingCounter::DecrementCount)(this);
  if (last && Tsan()) __tsan_acquire(this);
  return last;
}

void BlockingCounter::Wait() {
  REAL(void (*)(BlockingCounter*), &BlockingCounter::Wait)(this);
  if (Tsan()) __tsan_acquire(this);
}

bool Barrier::Block() {
  if (Tsan()) __tsan_release(this);
  const bool last = REAL(bool (*)(Barrier*), &Barrier::Block)(this);
  if (Tsan()) __tsan_acquire(this);
  return last;
}

ABSL_NAMESPACE_END
}  // namespace absl
