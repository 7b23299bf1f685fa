// The coordinator stops promptly on SIGTERM even with streams in the middle
// of a write: a worker that has stopped reading (SIGSTOP) with megabytes of
// tasks on their way to it, and a watcher that does not read its results.
// Shutting down ends those calls, their writes fail, and each stream must
// still finish: gRPC's server waits for every call to finish before it
// returns from Wait(), so one stream left unfinished hangs the coordinator.
// (With a frozen worker the stop takes about 5 s rather than the 1 s of
// CoordinatorServer::Shutdown()'s deadline: gRPC is slower to let go of a
// connection whose peer does not read.)
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/farm_client.h"
#include "common/grpc_options.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/local_farm.h"
#include "tests/time_scale.h"

namespace qfarm::testing {
namespace {

TEST(ShutdownTest, StopsPromptlyWithStreamsMidWrite) {
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    auto farm =
        LocalFarm::Start({{.id = "stuck", .mode = "async", .slots = 100},
                          {.id = "busy", .mode = "async", .slots = 100}},
                         {"--ephemeral"});
    ASSERT_TRUE(farm.ok()) << farm.status();
    const std::string address = (*farm)->address();
    (*farm)->worker("stuck")->Signal(SIGSTOP);
    auto client = client::FarmClient::Create({.address = address});
    // 10 MB of echo tasks: both workers get a share; the stuck one's stays
    // on its way, and the busy one's results pile up for the watcher.
    std::vector<v1::Task> tasks(40);
    for (size_t i = 0; i < tasks.size(); ++i) {
      tasks[i].set_kind("echo");
      tasks[i].set_text(absl::StrCat(i, "/", std::string(256 << 10, 'x')));
    }
    absl::StatusOr<uint64_t> job = client->SubmitJob(tasks);
    ASSERT_TRUE(job.ok()) << job.status();
    // A watcher that never reads.
    auto stub = v1::Farm::NewStub(MakeChannel(address));
    grpc::ClientContext watch_context;
    v1::WatchJobRequest request;
    request.set_job_id(*job);
    std::unique_ptr<grpc::ClientReader<v1::ResultBatch>> watcher =
        stub->WatchJob(&watch_context, request);

    // Wait until every task is either done (by busy) or held by stuck.
    const absl::Time deadline = absl::Now() + Scaled(absl::Seconds(60));
    while (true) {
      absl::StatusOr<v1::JobInfo> info = client->GetJob(*job);
      ASSERT_TRUE(info.ok()) << info.status();
      if (info->queued() == 0 && info->running() > 0 &&
          info->ok() + info->running() == tasks.size()) {
        absl::StatusOr<std::vector<v1::WorkerInfo>> workers =
            client->ListWorkers();
        ASSERT_TRUE(workers.ok());
        bool busy_idle = false;
        for (const v1::WorkerInfo& w : *workers) {
          if (w.worker_id() == "busy") busy_idle = w.in_flight() == 0;
        }
        if (busy_idle && info->ok() > 0) break;
      }
      ASSERT_LT(absl::Now(), deadline) << info->ShortDebugString();
      absl::SleepFor(absl::Milliseconds(20));  // Polling a remote condition.
    }

    const absl::Time term = absl::Now();
    (*farm)->coordinator()->Signal(SIGTERM);
    absl::StatusOr<int> code =
        (*farm)->coordinator()->WaitFor(Scaled(absl::Seconds(15)));
    ASSERT_TRUE(code.ok()) << "the coordinator hangs in its shutdown\n"
                           << (*farm)->Logs();
    EXPECT_EQ(*code, 0) << (*farm)->Logs();
    EXPECT_LT(absl::Now() - term, Scaled(absl::Seconds(15)));
    // The watcher's call ends with the coordinator.
    v1::ResultBatch batch;
    while (watcher->Read(&batch)) {
    }
    EXPECT_FALSE(watcher->Finish().ok());
    (*farm)->worker("stuck")->Signal(SIGCONT);
  }
}

}  // namespace
}  // namespace qfarm::testing
