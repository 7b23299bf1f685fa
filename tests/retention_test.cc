// Retention through the real binaries: a finished job released under
// --retain-finished answers NOT_FOUND with its own message, on every RPC
// and after a SIGKILL and restart; a WatchJob resume point skips what the
// client already has, and only for the process that sent it.
#include <grpcpp/client_context.h>
#include <signal.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/farm_client.h"
#include "common/grpc_options.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "qfarm/v1/farm.grpc.pb.h"
#include "tests/local_farm.h"
#include "tests/prometheus_scrape.h"

namespace qfarm::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// Polls GetJob until it answers NOT_FOUND; returns that status.
absl::Status WaitUntilReleased(client::FarmClient* client, uint64_t job) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    absl::StatusOr<v1::JobInfo> info = client->GetJob(job);
    if (info.status().code() == absl::StatusCode::kNotFound) {
      return info.status();
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError("the job was not released in 30 s");
}

TEST(RetentionTest, ReleasedJobIsNotFoundWithItsOwnMessageAcrossARestart) {
  auto farm =
      LocalFarm::Start({{.id = "w1", .mode = "async", .slots = 4}},
                       {"--retain-finished=1s", "--journal-sync=normal"});
  ASSERT_TRUE(farm.ok()) << farm.status();
  auto client = client::FarmClient::Create({.address = (*farm)->address()});
  CommandResult map = (*farm)->Qfarm({"map", "echo:a", "echo:b"});
  ASSERT_EQ(map.exit_code, 0) << Diagnose(map);
  const uint64_t job = MapJobId(map.err);
  ASSERT_NE(job, 0u) << map.err;

  absl::Status released = WaitUntilReleased(client.get(), job);
  ASSERT_EQ(released.code(), absl::StatusCode::kNotFound)
      << released << (*farm)->Logs();
  const std::string message(released.message());
  EXPECT_THAT(message, AllOf(HasSubstr(absl::StrCat("job ", job, " not found")),
                             HasSubstr("it finished at 20"),
                             HasSubstr("released under the retention setting "
                                       "--retain-finished=1s")));
  // Every command says the same; an id never issued says less.
  for (const char* command : {"status", "watch", "cancel"}) {
    CommandResult r = (*farm)->Qfarm({command, absl::StrCat(job)});
    EXPECT_NE(r.exit_code, 0) << command;
    EXPECT_THAT(r.err, HasSubstr("released under the retention setting"))
        << command << ": " << Diagnose(r);
  }
  CommandResult unknown = (*farm)->Qfarm({"status", "9999"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_THAT(unknown.err, AllOf(HasSubstr("job 9999 not found"),
                                 Not(HasSubstr("released"))))
      << Diagnose(unknown);

  // SIGKILL and restart on the same journal: still released, and the next
  // job gets a new id.
  ASSERT_TRUE((*farm)->RestartCoordinator().ok()) << (*farm)->Logs();
  ASSERT_TRUE((*farm)->WaitForWorkers(1, absl::Seconds(20)).ok());
  // (The client's old connection may report the restart once.)
  absl::StatusOr<v1::JobInfo> after = client->GetJob(job);
  if (after.status().code() == absl::StatusCode::kUnavailable) {
    after = client->GetJob(job);
  }
  EXPECT_EQ(after.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(after.status().message(), message);
  CommandResult next = (*farm)->Qfarm({"map", "echo:c"});
  ASSERT_EQ(next.exit_code, 0) << Diagnose(next);
  EXPECT_GT(MapJobId(next.err), job);
  EXPECT_TRUE((*farm)->Stop().ok());
}

// SIGKILL of the coordinator while it releases finished jobs and deletes
// their rows: a live job survives whole, a job released stays released, and
// a finished job not yet released is whole or released, never partial.
TEST(RetentionTest, KillDuringReleaseKeepsLiveJobsAndReleasedOnesReleased) {
  auto farm =
      LocalFarm::Start({{.id = "w1", .mode = "async", .slots = 64}},
                       {"--retain-finished=0s", "--journal-sync=normal"});
  ASSERT_TRUE(farm.ok()) << farm.status();
  auto client = client::FarmClient::Create({.address = (*farm)->address()});
  // Live: tasks of a kind no worker offers wait for ever.
  CommandResult live =
      (*farm)->Qfarm({"submit", "nobody-runs:a", "nobody-runs:b"});
  ASSERT_EQ(live.exit_code, 0) << Diagnose(live);
  uint64_t live_job = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(live.out), &live_job))
      << live.out;
  constexpr int kJobs = 8;
  constexpr int kTasks = 5000;
  std::vector<uint64_t> finished;
  for (int i = 0; i < kJobs; ++i) {
    CommandResult map = (*farm)->Qfarm(
        {"map", "--output=json", absl::StrCat("--repeat=", kTasks), "echo:x"});
    ASSERT_EQ(map.exit_code, 0) << Diagnose(map);
    finished.push_back(MapJobId(map.err));
  }
  // Kill as soon as the first is released: the rest are being released and
  // their rows deleted.
  ASSERT_EQ(WaitUntilReleased(client.get(), finished[0]).code(),
            absl::StatusCode::kNotFound);
  std::vector<uint64_t> released_before;
  for (uint64_t job : finished) {
    if (client->GetJob(job).status().code() == absl::StatusCode::kNotFound) {
      released_before.push_back(job);
    }
  }
  ASSERT_TRUE((*farm)->RestartCoordinator().ok()) << (*farm)->Logs();
  ASSERT_TRUE((*farm)->WaitForWorkers(1, absl::Seconds(20)).ok());
  absl::StatusOr<v1::JobInfo> info = client->GetJob(live_job);
  if (info.status().code() == absl::StatusCode::kUnavailable) {
    info = client->GetJob(live_job);
  }
  ASSERT_TRUE(info.ok()) << info.status() << (*farm)->Logs();
  EXPECT_EQ(info->state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(info->total(), 2u);
  EXPECT_EQ(info->queued(), 2u);
  for (uint64_t job : released_before) {
    absl::StatusOr<v1::JobInfo> again = client->GetJob(job);
    EXPECT_EQ(again.status().code(), absl::StatusCode::kNotFound) << job;
    EXPECT_THAT(again.status().message(), HasSubstr("released")) << job;
  }
  for (uint64_t job : finished) {
    absl::StatusOr<v1::JobInfo> now = client->GetJob(job);
    if (now.ok()) {
      EXPECT_EQ(now->state(), v1::JOB_STATE_DONE) << job;
      EXPECT_EQ(now->ok(), static_cast<uint32_t>(kTasks)) << job;
    } else {
      EXPECT_THAT(now.status().message(), HasSubstr("released")) << job;
    }
  }
  // And all end up released.
  for (uint64_t job : finished) {
    EXPECT_EQ(WaitUntilReleased(client.get(), job).code(),
              absl::StatusCode::kNotFound);
  }
  EXPECT_TRUE((*farm)->Stop().ok());
}

TEST(RetentionTest, BadRetentionFlagsAreUsageErrors) {
  for (const auto& [flag, says] :
       std::vector<std::pair<std::string, std::string>>{
           {"--retain-finished-bytes=lots", "not a size"},
           {"--retain-finished-bytes=1.5GiB", "expected a size such as 1GiB"},
           {"--retain-finished-bytes=1PB", "unknown unit"},
           {"--retain-finished=-1s", "must not be negative"},
           {"--retain-finished=soon", "--retain-finished"}}) {
    CommandResult r = RunCommand({BinPath("qfarm-coordinator"),
                                  "--listen=127.0.0.1:0", "--ephemeral", flag});
    EXPECT_EQ(r.exit_code, 2) << flag << ": " << Diagnose(r);
    EXPECT_THAT(r.err, HasSubstr(says)) << flag;
    EXPECT_THAT(r.out, Not(HasSubstr("listening"))) << flag;
  }
}

// Every result WatchJob sends for `request` ("INDEX=VALUE", in the order
// sent), and the epoch they came with.
std::vector<std::string> Watch(v1::Farm::Stub* stub,
                               const v1::WatchJobRequest& request,
                               uint64_t* epoch) {
  grpc::ClientContext context;
  auto reader = stub->WatchJob(&context, request);
  v1::ResultBatch batch;
  std::vector<std::string> results;
  while (reader->Read(&batch)) {
    *epoch = batch.epoch();
    for (const v1::TaskResult& r : batch.results()) {
      results.push_back(absl::StrCat(r.index(), "=", r.value()));
    }
  }
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  return results;
}

TEST(RetentionTest, WatchResumesAfterWhatTheClientHas) {
  auto farm = LocalFarm::Start({{.id = "w1", .mode = "async", .slots = 4}},
                               {"--ephemeral"});
  ASSERT_TRUE(farm.ok()) << farm.status();
  CommandResult map = (*farm)->Qfarm({"map", "echo:a", "echo:b", "echo:c"});
  ASSERT_EQ(map.exit_code, 0) << Diagnose(map);
  const uint64_t job = MapJobId(map.err);
  auto stub = v1::Farm::NewStub(MakeChannel((*farm)->address()));

  v1::WatchJobRequest request;
  request.set_job_id(job);
  uint64_t epoch = 0;
  const std::vector<std::string> all = Watch(stub.get(), request, &epoch);
  ASSERT_EQ(all.size(), 3u);
  ASSERT_NE(epoch, 0u);

  // This process's resume point: only what follows.
  request.set_resume_epoch(epoch);
  request.set_resume_after(2);
  uint64_t again = 0;
  EXPECT_THAT(Watch(stub.get(), request, &again),
              ::testing::ElementsAre(all[2]));
  EXPECT_EQ(again, epoch);
  // Another process's: everything.
  request.set_resume_epoch(~epoch);
  EXPECT_EQ(Watch(stub.get(), request, &again), all);
  EXPECT_TRUE((*farm)->Stop().ok());
}

// Polls the coordinator's metrics until qfarm_finished_jobs{results="disk"}
// is `want`.
absl::Status WaitForStored(const std::string& metrics, double want) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  double last = -1;
  while (absl::Now() < deadline) {
    absl::StatusOr<std::string> text = Scrape(metrics);
    if (text.ok()) {
      last = Sample(*text, "qfarm_finished_jobs{results=\"disk\"}");
      if (last == want) return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(50));  // Polling a remote condition.
  }
  return absl::DeadlineExceededError(
      absl::StrCat("finished jobs on disk: ", last, ", not ", want));
}

// The coordinator's metrics address, from its second line of output.
std::string MetricsAddress(LocalFarm& farm) {
  absl::StatusOr<std::string> line =
      farm.coordinator()->ReadLine(absl::Seconds(10));
  EXPECT_TRUE(line.ok()) << line.status();
  return AddressAfter(line.value_or(""), "qfarm-coordinator metrics on ");
}

// A finished job nobody reads leaves the coordinator's memory: its results
// come back from the journal, whole, when asked for, in one order from one
// load to the next (so a resume point holds), and a restart restores the
// job from its summary without reading them.
TEST(RetentionTest, FinishedJobKeptOnDiskComesBackWhole) {
  auto farm = LocalFarm::Start(
      {{.id = "w1", .mode = "async", .slots = 16}},
      {"--journal-sync=normal", "--metrics-listen=127.0.0.1:0"});
  ASSERT_TRUE(farm.ok()) << farm.status();
  std::string metrics = MetricsAddress(**farm);
  ASSERT_FALSE(metrics.empty());
  std::vector<std::string> args = {"map", "--output=json"};
  constexpr int kTasks = 300;
  std::vector<std::string> expected;
  for (int i = 0; i < kTasks; ++i) {
    args.push_back(absl::StrCat("echo:value-", i));
    expected.push_back(absl::StrCat(i, "=value-", i));
  }
  CommandResult map = (*farm)->Qfarm(args);
  ASSERT_EQ(map.exit_code, 0) << Diagnose(map);
  const uint64_t job = MapJobId(map.err);
  ASSERT_NE(job, 0u) << map.err;
  ASSERT_TRUE(WaitForStored(metrics, 1).ok()) << (*farm)->Logs();

  auto stub = v1::Farm::NewStub(MakeChannel((*farm)->address()));
  v1::WatchJobRequest request;
  request.set_job_id(job);
  uint64_t epoch = 0;
  std::vector<std::string> first = Watch(stub.get(), request, &epoch);
  EXPECT_THAT(first, ::testing::UnorderedElementsAreArray(expected));
  // Stored again (nobody holds it), then loaded again for a resume point
  // of the first load: the rest, in the same order.
  ASSERT_TRUE(WaitForStored(metrics, 1).ok()) << (*farm)->Logs();
  request.set_resume_epoch(epoch);
  request.set_resume_after(100);
  uint64_t again = 0;
  EXPECT_EQ(Watch(stub.get(), request, &again),
            std::vector<std::string>(first.begin() + 100, first.end()));
  EXPECT_EQ(again, epoch);

  // A clean stop and a restart: the job comes back from its summary.
  (*farm)->coordinator()->Signal(SIGTERM);
  ASSERT_EQ((*farm)->coordinator()->Wait(), 0) << (*farm)->Logs();
  ASSERT_TRUE((*farm)->RestartCoordinator().ok()) << (*farm)->Logs();
  metrics = MetricsAddress(**farm);
  EXPECT_THAT((*farm)->Logs(),
              HasSubstr("recovered 1 jobs (1 of them finished, their results "
                        "left on disk) and 0 results"));
  absl::StatusOr<std::string> text = Scrape(metrics);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(Sample(*text, "qfarm_finished_jobs{results=\"disk\"}"), 1);
  CommandResult status = (*farm)->Qfarm({"status", absl::StrCat(job)});
  EXPECT_EQ(status.exit_code, 0) << Diagnose(status);
  EXPECT_THAT(status.out, HasSubstr("done"));
  CommandResult watch =
      (*farm)->Qfarm({"watch", "--output=json", absl::StrCat(job)});
  ASSERT_EQ(watch.exit_code, 0) << Diagnose(watch);
  absl::StatusOr<std::vector<JsonObject>> lines = ParseJsonLines(watch.out);
  ASSERT_TRUE(lines.ok()) << lines.status();
  std::vector<std::string> watched;
  for (const JsonObject& o : *lines) {
    if (!o.contains("index")) continue;
    watched.push_back(absl::StrCat(o.at("index"), "=", o.at("value")));
  }
  EXPECT_THAT(watched, ::testing::UnorderedElementsAreArray(expected));
  EXPECT_TRUE((*farm)->Stop().ok());
}

}  // namespace
}  // namespace qfarm::testing
