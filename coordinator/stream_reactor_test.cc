// WriteLoop's paths without a network: a fake transport records the writes
// and the finish, and the test completes each write when it chooses.
#include "coordinator/stream_reactor.h"

#include <deque>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qfarm::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Sends the strings queued with Queue(); finishes with `finish_with` once
// told there is nothing more (Done()).
class FakeStream final : public WriteLoop<std::string> {
 public:
  void Queue(std::string message) {
    {
      absl::MutexLock lock(&mu_);
      queue_.push_back(std::move(message));
    }
    Pump();
  }
  void Done(absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      done_ = std::move(status);
    }
    Pump();
  }

  std::vector<std::string> written() {
    absl::MutexLock lock(&fake_mu_);
    return written_;
  }
  std::vector<absl::Status> finished() {
    absl::MutexLock lock(&fake_mu_);
    return finished_;
  }
  int sent_back() {
    absl::MutexLock lock(&fake_mu_);
    return sent_back_;
  }
  int writes_in_flight() {
    absl::MutexLock lock(&fake_mu_);
    return in_flight_;
  }

 protected:
  Fill FillNext(std::string* out, absl::Status* finish) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!queue_.empty()) {
      *out = std::move(queue_.front());
      queue_.pop_front();
      return Fill::kMessage;
    }
    if (done_.has_value()) {
      *finish = *done_;
      return Fill::kFinish;
    }
    return Fill::kIdle;
  }
  void OnSent(std::string* sent) override {
    absl::MutexLock lock(&fake_mu_);
    ++sent_back_;
    sent->clear();
  }
  void StartWriteOf(const std::string* message) override {
    absl::MutexLock lock(&fake_mu_);
    EXPECT_EQ(in_flight_, 0) << "two writes in flight";
    ++in_flight_;
    written_.push_back(*message);
  }
  void FinishWith(const absl::Status& status) override {
    absl::MutexLock lock(&fake_mu_);
    EXPECT_EQ(in_flight_, 0) << "finished with a write in flight";
    finished_.push_back(status);
  }

 public:
  // The transport's completion of the write in flight.
  void CompleteWrite(bool ok) {
    {
      absl::MutexLock lock(&fake_mu_);
      ASSERT_EQ(in_flight_, 1);
      in_flight_ = 0;
    }
    WriteDone(ok);
  }

 private:
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> done_ ABSL_GUARDED_BY(mu_);

  absl::Mutex fake_mu_;
  std::vector<std::string> written_ ABSL_GUARDED_BY(fake_mu_);
  std::vector<absl::Status> finished_ ABSL_GUARDED_BY(fake_mu_);
  int in_flight_ ABSL_GUARDED_BY(fake_mu_) = 0;
  int sent_back_ ABSL_GUARDED_BY(fake_mu_) = 0;
};

TEST(WriteLoopTest, OneWriteAtATimeInOrder) {
  FakeStream stream;
  stream.Queue("a");
  stream.Queue("b");
  stream.Queue("c");
  EXPECT_THAT(stream.written(), ElementsAre("a"));
  stream.CompleteWrite(true);
  EXPECT_THAT(stream.written(), ElementsAre("a", "b"));
  stream.CompleteWrite(true);
  stream.CompleteWrite(true);
  EXPECT_THAT(stream.written(), ElementsAre("a", "b", "c"));
  EXPECT_EQ(stream.sent_back(), 3);
  EXPECT_THAT(stream.finished(), IsEmpty());
  stream.Pump();  // Idle: nothing happens.
  EXPECT_EQ(stream.writes_in_flight(), 0);
}

TEST(WriteLoopTest, FillNextFinishesWhenIdle) {
  FakeStream stream;
  stream.Queue("a");
  stream.Done(absl::OkStatus());
  EXPECT_THAT(stream.finished(), IsEmpty());  // "a" is in flight.
  stream.CompleteWrite(true);
  EXPECT_THAT(stream.finished(), ElementsAre(absl::OkStatus()));
  stream.Pump();
  stream.Close(absl::CancelledError("late"));
  EXPECT_EQ(stream.finished().size(), 1u);
}

TEST(WriteLoopTest, CloseWhileIdleFinishesAtOnce) {
  FakeStream stream;
  stream.Close(absl::UnavailableError("shutting down"));
  EXPECT_THAT(stream.finished(),
              ElementsAre(absl::UnavailableError("shutting down")));
  stream.Queue("x");  // Nothing goes out after the end.
  EXPECT_THAT(stream.written(), IsEmpty());
}

TEST(WriteLoopTest, CloseDuringWriteFinishesAfterIt) {
  FakeStream stream;
  stream.Queue("a");
  stream.Queue("b");
  stream.Close(absl::CancelledError("cancelled"));
  EXPECT_THAT(stream.finished(), IsEmpty());
  stream.CompleteWrite(true);
  // "b" is dropped: a close without draining sends nothing more.
  EXPECT_THAT(stream.written(), ElementsAre("a"));
  EXPECT_THAT(stream.finished(),
              ElementsAre(absl::CancelledError("cancelled")));
}

TEST(WriteLoopTest, DrainingCloseSendsWhatIsQueued) {
  FakeStream stream;
  stream.Queue("a");
  stream.Queue("b");
  stream.Close(absl::OkStatus(), /*drain=*/true);
  stream.CompleteWrite(true);
  EXPECT_THAT(stream.written(), ElementsAre("a", "b"));
  EXPECT_THAT(stream.finished(), IsEmpty());
  stream.CompleteWrite(true);
  EXPECT_THAT(stream.finished(), ElementsAre(absl::OkStatus()));
}

TEST(WriteLoopTest, DrainingWithAnErrorDropsTheRest) {
  FakeStream stream;
  stream.Queue("a");
  stream.Queue("b");
  stream.Close(absl::InternalError("bad"), /*drain=*/true);
  stream.CompleteWrite(true);
  EXPECT_THAT(stream.written(), ElementsAre("a"));
  EXPECT_THAT(stream.finished(), ElementsAre(absl::InternalError("bad")));
}

TEST(WriteLoopTest, FailedWriteFinishesUnavailable) {
  FakeStream stream;
  stream.Queue("a");
  stream.Queue("b");
  stream.CompleteWrite(false);
  EXPECT_THAT(stream.written(), ElementsAre("a"));
  ASSERT_EQ(stream.finished().size(), 1u);
  EXPECT_EQ(stream.finished()[0].code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(stream.closing());
  EXPECT_EQ(stream.sent_back(), 1);
}

TEST(WriteLoopTest, FailedWriteFinishesAStreamAlreadyDraining) {
  FakeStream stream;
  stream.Queue("a");
  stream.Queue("b");
  stream.Close(absl::OkStatus(), /*drain=*/true);
  stream.CompleteWrite(false);
  EXPECT_THAT(stream.written(), ElementsAre("a"));
  // The close came first: its status stands.
  EXPECT_THAT(stream.finished(), ElementsAre(absl::OkStatus()));
}

TEST(WriteLoopTest, ConcurrentCloseAndWritesFinishOnce) {
  for (int round = 0; round < 200; ++round) {
    FakeStream stream;
    stream.Queue("a");
    std::thread writer([&stream] {
      for (int i = 0; i < 20; ++i) stream.Queue("m");
    });
    std::thread closer(
        [&stream] { stream.Close(absl::CancelledError("bye")); });
    // Complete writes until the stream is finished.
    while (stream.finished().empty()) {
      if (stream.writes_in_flight() == 1) stream.CompleteWrite(true);
    }
    writer.join();
    closer.join();
    while (stream.writes_in_flight() == 1) stream.CompleteWrite(true);
    EXPECT_EQ(stream.finished().size(), 1u);
    EXPECT_EQ(stream.writes_in_flight(), 0);
  }
}

}  // namespace
}  // namespace qfarm::coordinator
