// `qfarm jobs`, `qfarm status` without a job and the ListJobs RPC through
// the real binaries (states, counts, the client, paging, page tokens), and
// the progress line `qfarm map` and `qfarm watch` draw on a terminal (run
// under a pseudo-terminal with script(1)).
#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "client/farm_client.h"
#include "common/logging.h"
#include "common/task_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/local_farm.h"
#include "tests/subprocess.h"

namespace qfarm::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

v1::Task Spec(const std::string& spec) {
  absl::StatusOr<v1::Task> task = ParseTaskSpec(spec);
  QFARM_CHECK(task.ok()) << task.status();
  return *std::move(task);
}

std::string Str(const JsonObject& object, const std::string& key) {
  auto it = object.find(key);
  return it == object.end() ? "<missing " + key + ">" : it->second;
}

int64_t Int(const JsonObject& object, const std::string& key) {
  int64_t value = -1;
  if (!absl::SimpleAtoi(Str(object, key), &value)) return -1;
  return value;
}

// The id `qfarm submit` printed.
uint64_t SubmittedId(const CommandResult& r) {
  uint64_t id = 0;
  if (r.exit_code != 0 ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(r.out), &id)) {
    return 0;
  }
  return id;
}

// Polls GetJob until the job is in `state`.
absl::Status WaitForState(client::FarmClient* client, uint64_t job,
                          v1::JobState state, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(5);
  while (true) {
    absl::StatusOr<v1::JobInfo> info = client->GetJob(job);
    if (info.ok() && info->state() == state) return absl::OkStatus();
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "job ", job, " not in state ", v1::JobState_Name(state), ": ",
          info.ok() ? info->ShortDebugString() : info.status().ToString()));
    }
    absl::SleepFor(pause);  // Polling a remote condition, with backoff.
    pause = std::min(pause * 2, absl::Milliseconds(100));
  }
}

std::vector<uint64_t> JsonIds(const std::vector<JsonObject>& objects) {
  std::vector<uint64_t> ids;
  for (const JsonObject& object : objects) {
    ids.push_back(static_cast<uint64_t>(Int(object, "job_id")));
  }
  return ids;
}

// The ids of `qfarm jobs ARGS --output=json`.
std::vector<uint64_t> ListedIds(const LocalFarm& farm,
                                std::vector<std::string> args) {
  args.insert(args.begin(), "jobs");
  args.push_back("--output=json");
  CommandResult r = farm.Qfarm(args);
  EXPECT_EQ(r.exit_code, 0) << Diagnose(r);
  absl::StatusOr<std::vector<JsonObject>> lines = ParseJsonLines(r.out);
  EXPECT_TRUE(lines.ok()) << lines.status();
  return lines.ok() ? JsonIds(*lines) : std::vector<uint64_t>{};
}

// Walks every page of ListJobs; checks each page's size bound.
absl::StatusOr<std::vector<uint64_t>> ListAllPages(client::FarmClient* client,
                                                   v1::JobState state,
                                                   uint32_t page_size,
                                                   int* pages = nullptr) {
  const uint32_t bound = page_size == 0 ? 100 : std::min(page_size, 1000u);
  std::vector<uint64_t> ids;
  v1::ListJobsRequest request;
  request.set_state(state);
  request.set_page_size(page_size);
  int count = 0;
  do {
    absl::StatusOr<v1::ListJobsResponse> page = client->ListJobs(request);
    if (!page.ok()) return page.status();
    if (++count > 10'000) return absl::InternalError("endless pages");
    if (static_cast<uint32_t>(page->jobs_size()) > bound) {
      return absl::InternalError(absl::StrCat(
          "page of ", page->jobs_size(), " jobs for page_size ", page_size));
    }
    if (page->as_of_us() <= 0) return absl::InternalError("no as_of_us");
    for (const v1::JobInfo& job : page->jobs()) ids.push_back(job.job_id());
    request.set_page_token(page->next_page_token());
  } while (!request.page_token().empty());
  if (pages != nullptr) *pages = count;
  return ids;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// The first column of a table row (the job id, right-aligned).
std::string FirstCell(const std::string& row) {
  std::vector<std::string> cells = absl::StrSplit(row, ' ', absl::SkipEmpty());
  return cells.empty() ? "" : cells[0];
}

// One farm, one test: every process must exit 0 on SIGTERM.
class JobsTest : public ::testing::Test {
 protected:
  void StartFarm(int slots) {
    auto farm =
        LocalFarm::Start({{.id = "worker-1", .mode = "thread", .slots = slots}},
                         {"--journal-sync=normal"});
    ASSERT_TRUE(farm.ok()) << farm.status();
    farm_ = *std::move(farm);
    client_ = client::FarmClient::Create({.address = farm_->address()});
  }

  void TearDown() override {
    if (farm_ == nullptr) return;
    absl::Status stopped = farm_->Stop();
    EXPECT_TRUE(stopped.ok()) << stopped;
  }

  std::unique_ptr<LocalFarm> farm_;
  std::unique_ptr<client::FarmClient> client_;
};

TEST_F(JobsTest, ThreeJobsInDifferentStatesWithTheirCounts) {
  ASSERT_NO_FATAL_FAILURE(StartFarm(2));
  // Done: two echoes.
  CommandResult done = farm_->Qfarm({"map", "echo:a", "echo:b"});
  ASSERT_EQ(done.exit_code, 0) << Diagnose(done);
  const uint64_t done_id = MapJobId(done.err);
  ASSERT_NE(done_id, 0u) << done.err;
  // Failed: one ok, one failed (nothing listens on port 1), one timed out.
  CommandResult failed = farm_->Qfarm(
      {"map", "echo:x", "http:http://127.0.0.1:1/", "sleep:10s@timeout=50ms"});
  ASSERT_EQ(failed.exit_code, 1) << Diagnose(failed);
  const uint64_t failed_id = MapJobId(failed.err);
  ASSERT_NE(failed_id, 0u) << failed.err;
  // Cancelled: two running and one queued on the two slots.
  CommandResult cancelled =
      farm_->Qfarm({"submit", "sleep:60s", "sleep:60s", "sleep:60s"});
  const uint64_t cancelled_id = SubmittedId(cancelled);
  ASSERT_NE(cancelled_id, 0u) << Diagnose(cancelled);
  CommandResult cancel = farm_->Qfarm({"cancel", absl::StrCat(cancelled_id)});
  ASSERT_EQ(cancel.exit_code, 0) << Diagnose(cancel);
  ASSERT_TRUE(WaitForState(client_.get(), cancelled_id, v1::JOB_STATE_CANCELLED,
                           absl::Seconds(15))
                  .ok())
      << farm_->Logs();
  // Running: two tasks running, one queued.
  CommandResult running =
      farm_->Qfarm({"submit", "sleep:60s", "sleep:60s", "sleep:60s"});
  const uint64_t running_id = SubmittedId(running);
  ASSERT_NE(running_id, 0u) << Diagnose(running);

  ASSERT_LT(done_id, failed_id);
  ASSERT_LT(failed_id, cancelled_id);
  ASSERT_LT(cancelled_id, running_id);

  // JSON: newest first, with the states and the counts.
  CommandResult json = farm_->Qfarm({"jobs", "--output=json"});
  ASSERT_EQ(json.exit_code, 0) << Diagnose(json);
  absl::StatusOr<std::vector<JsonObject>> jobs = ParseJsonLines(json.out);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_THAT(JsonIds(*jobs),
              ElementsAre(running_id, cancelled_id, failed_id, done_id))
      << json.out;
  const JsonObject& r = (*jobs)[0];
  const JsonObject& c = (*jobs)[1];
  const JsonObject& f = (*jobs)[2];
  const JsonObject& d = (*jobs)[3];
  EXPECT_EQ(Str(r, "state"), "running");
  EXPECT_EQ(Str(c, "state"), "cancelled");
  EXPECT_EQ(Str(f, "state"), "failed");
  EXPECT_EQ(Str(d, "state"), "done");
  for (const JsonObject& job : *jobs) {
    EXPECT_THAT(Str(job, "client"), StartsWith("ipv4:127.0.0.1")) << json.out;
    EXPECT_EQ(Int(job, "total"), 3 - (&job == &d ? 1 : 0)) << json.out;
    EXPECT_EQ(Int(job, "ok") + Int(job, "failed") + Int(job, "timed_out") +
                  Int(job, "cancelled") + Int(job, "queued") +
                  Int(job, "running"),
              Int(job, "total"))
        << json.out;
    EXPECT_GT(Int(job, "created_us"), 0) << json.out;
    for (const char* field : {"wall_s", "tasks_per_s", "age_s"}) {
      double value = -1;
      EXPECT_TRUE(absl::SimpleAtod(Str(job, field), &value) && value >= 0)
          << field << " in " << json.out;
    }
  }
  // Newest first also by creation time.
  EXPECT_GE(Int(r, "created_us"), Int(c, "created_us"));
  EXPECT_GE(Int(c, "created_us"), Int(f, "created_us"));
  EXPECT_GE(Int(f, "created_us"), Int(d, "created_us"));
  // Done.
  EXPECT_EQ(Int(d, "ok"), 2);
  EXPECT_EQ(Int(d, "failed") + Int(d, "timed_out") + Int(d, "cancelled"), 0);
  EXPECT_GE(Int(d, "finished_us"), Int(d, "created_us"));
  EXPECT_GT(Int(d, "finished_us"), 0);
  // Failed: its three outcomes.
  EXPECT_EQ(Int(f, "ok"), 1);
  EXPECT_EQ(Int(f, "failed"), 1);
  EXPECT_EQ(Int(f, "timed_out"), 1);
  EXPECT_EQ(Int(f, "cancelled"), 0);
  EXPECT_GT(Int(f, "finished_us"), 0);
  // Cancelled: all three.
  EXPECT_EQ(Int(c, "cancelled"), 3);
  EXPECT_EQ(Int(c, "ok") + Int(c, "failed") + Int(c, "timed_out"), 0);
  EXPECT_EQ(Int(c, "queued") + Int(c, "running"), 0);
  EXPECT_GT(Int(c, "finished_us"), 0);
  // Running: nothing finished yet, no end.
  EXPECT_EQ(Int(r, "ok") + Int(r, "failed") + Int(r, "timed_out") +
                Int(r, "cancelled"),
            0);
  EXPECT_EQ(Int(r, "queued") + Int(r, "running"), 3);
  EXPECT_EQ(Int(r, "finished_us"), 0);

  // Text: the header, then one row per job: id, state, ..., client.
  CommandResult text = farm_->Qfarm({"jobs"});
  ASSERT_EQ(text.exit_code, 0) << Diagnose(text);
  std::vector<std::string> rows = Lines(text.out);
  ASSERT_EQ(rows.size(), 5u) << text.out;
  EXPECT_THAT(rows[0], StartsWith("   JOB  STATE"));
  EXPECT_THAT(rows[0], HasSubstr("TASKS"));
  EXPECT_TRUE(absl::EndsWith(rows[0], "CLIENT")) << rows[0];
  const std::vector<std::pair<uint64_t, std::string>> expected = {
      {running_id, "running"},
      {cancelled_id, "cancelled"},
      {failed_id, "failed"},
      {done_id, "done"}};
  for (size_t i = 0; i < expected.size(); ++i) {
    std::vector<std::string> cells =
        absl::StrSplit(rows[i + 1], ' ', absl::SkipEmpty());
    ASSERT_GE(cells.size(), 3u) << rows[i + 1];
    EXPECT_EQ(cells[0], absl::StrCat(expected[i].first)) << rows[i + 1];
    EXPECT_EQ(cells[1], expected[i].second) << rows[i + 1];
    EXPECT_THAT(cells.back(), StartsWith("ipv4:127.0.0.1")) << rows[i + 1];
  }

  // Filters: exactly the jobs in that state.
  EXPECT_THAT(ListedIds(*farm_, {"--state=done"}), ElementsAre(done_id));
  EXPECT_THAT(ListedIds(*farm_, {"--state=failed"}), ElementsAre(failed_id));
  EXPECT_THAT(ListedIds(*farm_, {"--state=cancelled"}),
              ElementsAre(cancelled_id));
  EXPECT_THAT(ListedIds(*farm_, {"--state=running"}), ElementsAre(running_id));
  // And through the RPC.
  for (auto [state, id] : std::vector<std::pair<v1::JobState, uint64_t>>{
           {v1::JOB_STATE_DONE, done_id},
           {v1::JOB_STATE_FAILED, failed_id},
           {v1::JOB_STATE_CANCELLED, cancelled_id},
           {v1::JOB_STATE_RUNNING, running_id}}) {
    absl::StatusOr<std::vector<uint64_t>> ids =
        ListAllPages(client_.get(), state, 1);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_THAT(*ids, ElementsAre(id)) << v1::JobState_Name(state);
  }

  // `qfarm status` with no job: the running jobs only, as a table.
  CommandResult status = farm_->Qfarm({"status"});
  ASSERT_EQ(status.exit_code, 0) << Diagnose(status);
  std::vector<std::string> status_rows = Lines(status.out);
  ASSERT_EQ(status_rows.size(), 2u) << status.out;
  EXPECT_THAT(status_rows[0], StartsWith("   JOB  STATE"));
  EXPECT_EQ(FirstCell(status_rows[1]), absl::StrCat(running_id)) << status.out;
  EXPECT_THAT(status.out, Not(HasSubstr("cancelled")));
  EXPECT_THAT(status.out, Not(HasSubstr("done")));

  // Once cancelled too, nothing runs: status lists no job.
  CommandResult stop = farm_->Qfarm({"cancel", absl::StrCat(running_id)});
  ASSERT_EQ(stop.exit_code, 0) << Diagnose(stop);
  ASSERT_TRUE(WaitForState(client_.get(), running_id, v1::JOB_STATE_CANCELLED,
                           absl::Seconds(15))
                  .ok());
  CommandResult none = farm_->Qfarm({"status"});
  ASSERT_EQ(none.exit_code, 0) << Diagnose(none);
  EXPECT_EQ(Lines(none.out).size(), 1u) << none.out;
  EXPECT_THAT(ListedIds(*farm_, {"--state=cancelled"}),
              ElementsAre(running_id, cancelled_id));
}

TEST_F(JobsTest, PagingOver250JobsReturnsEachOnce) {
  ASSERT_NO_FATAL_FAILURE(StartFarm(4));
  constexpr int kJobs = 250;
  std::vector<uint64_t> submitted;
  for (int i = 0; i < kJobs; ++i) {
    absl::StatusOr<uint64_t> id =
        client_->SubmitJob({Spec(absl::StrCat("echo:", i))});
    ASSERT_TRUE(id.ok()) << id.status();
    submitted.push_back(*id);
  }
  std::vector<uint64_t> newest_first = submitted;
  std::sort(newest_first.rbegin(), newest_first.rend());
  ASSERT_EQ(std::set<uint64_t>(submitted.begin(), submitted.end()).size(),
            submitted.size());

  // Every job once, newest first, over pages of at most 7 (not a divisor
  // of 250), while some jobs may still run.
  int pages = 0;
  absl::StatusOr<std::vector<uint64_t>> all =
      ListAllPages(client_.get(), v1::JOB_STATE_UNSPECIFIED, 7, &pages);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(*all, ElementsAreArray(newest_first));
  EXPECT_GE(pages, (kJobs + 6) / 7);

  // Once every job is done, the same by state, and none is running.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  absl::Duration pause = absl::Milliseconds(5);
  while (true) {
    absl::StatusOr<std::vector<uint64_t>> running =
        ListAllPages(client_.get(), v1::JOB_STATE_RUNNING, 1000);
    ASSERT_TRUE(running.ok()) << running.status();
    if (running->empty()) break;
    ASSERT_LT(absl::Now(), deadline) << running->size() << " jobs still run";
    absl::SleepFor(pause);  // Polling a remote condition, with backoff.
    pause = std::min(pause * 2, absl::Milliseconds(100));
  }
  absl::StatusOr<std::vector<uint64_t>> done =
      ListAllPages(client_.get(), v1::JOB_STATE_DONE, 7);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_THAT(*done, ElementsAreArray(newest_first));
  absl::StatusOr<std::vector<uint64_t>> failed =
      ListAllPages(client_.get(), v1::JOB_STATE_FAILED, 7);
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_TRUE(failed->empty());
  // page_size 0 means 100, and more than 1000 means 1000: the walks check
  // each page's size.
  for (uint32_t size : {0u, 1u, 250u, 5000u}) {
    absl::StatusOr<std::vector<uint64_t>> ids =
        ListAllPages(client_.get(), v1::JOB_STATE_UNSPECIFIED, size);
    ASSERT_TRUE(ids.ok()) << "page_size " << size << ": " << ids.status();
    EXPECT_THAT(*ids, ElementsAreArray(newest_first)) << "page_size " << size;
  }

  // The CLI: all of them, the 30 newest, and 20 by default.
  EXPECT_THAT(ListedIds(*farm_, {"--limit=1000"}),
              ElementsAreArray(newest_first));
  EXPECT_THAT(
      ListedIds(*farm_, {"--limit=30"}),
      ElementsAreArray(newest_first.begin(), newest_first.begin() + 30));
  EXPECT_THAT(ListedIds(*farm_, {"--limit=1", "--state=done"}),
              ElementsAre(newest_first[0]));
  CommandResult text = farm_->Qfarm({"jobs"});
  ASSERT_EQ(text.exit_code, 0) << Diagnose(text);
  std::vector<std::string> rows = Lines(text.out);
  ASSERT_EQ(rows.size(), 21u) << text.out;
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_EQ(FirstCell(rows[i]), absl::StrCat(newest_first[i - 1])) << rows[i];
  }
}

TEST(JobsTokensTest, ForeignOrAlteredPageTokensAreInvalidArgument) {
  auto a = LocalFarm::Start({{.id = "worker-a", .slots = 2}},
                            {"--journal-sync=normal"});
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = LocalFarm::Start({{.id = "worker-b", .slots = 2}}, {"--ephemeral"});
  ASSERT_TRUE(b.ok()) << b.status();
  auto client_a = client::FarmClient::Create({.address = (*a)->address()});
  auto client_b = client::FarmClient::Create({.address = (*b)->address()});
  // Three done jobs on each: page_size 1 leaves a token.
  for (client::FarmClient* client : {client_a.get(), client_b.get()}) {
    for (int i = 0; i < 3; ++i) {
      absl::StatusOr<std::vector<v1::TaskResult>> ran =
          client->Map({Spec(absl::StrCat("echo:", i))});
      ASSERT_TRUE(ran.ok()) << ran.status();
    }
  }
  auto first_page = [](client::FarmClient* client, v1::JobState state) {
    v1::ListJobsRequest request;
    request.set_state(state);
    request.set_page_size(1);
    absl::StatusOr<v1::ListJobsResponse> page = client->ListJobs(request);
    QFARM_CHECK(page.ok()) << page.status();
    return *std::move(page);
  };
  auto next = [](client::FarmClient* client, v1::JobState state,
                 const std::string& token) {
    v1::ListJobsRequest request;
    request.set_state(state);
    request.set_page_size(1);
    request.set_page_token(token);
    return client->ListJobs(request);
  };
  const v1::ListJobsResponse page_a =
      first_page(client_a.get(), v1::JOB_STATE_UNSPECIFIED);
  ASSERT_EQ(page_a.jobs_size(), 1);
  const std::string token = page_a.next_page_token();
  ASSERT_FALSE(token.empty());

  // The issuing coordinator honours it: the next job down.
  absl::StatusOr<v1::ListJobsResponse> second =
      next(client_a.get(), v1::JOB_STATE_UNSPECIFIED, token);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->jobs_size(), 1);
  EXPECT_LT(second->jobs(0).job_id(), page_a.jobs(0).job_id());

  // Another coordinator (with jobs of the same ids) does not.
  absl::StatusOr<v1::ListJobsResponse> foreign =
      next(client_b.get(), v1::JOB_STATE_UNSPECIFIED, token);
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kInvalidArgument)
      << foreign.status();
  EXPECT_THAT(foreign.status().message(), HasSubstr("page_token"));

  // Any one character changed.
  for (size_t i = 0; i < token.size(); ++i) {
    std::string altered = token;
    altered[i] = altered[i] == 'A' ? 'B' : 'A';
    absl::StatusOr<v1::ListJobsResponse> r =
        next(client_a.get(), v1::JOB_STATE_UNSPECIFIED, altered);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
        << "character " << i << " of " << token << " -> " << altered << ": "
        << r.status();
  }
  for (const std::string& junk :
       {std::string("x"), token + "A", token.substr(0, token.size() - 1),
        std::string("!!!!")}) {
    EXPECT_EQ(
        next(client_a.get(), v1::JOB_STATE_UNSPECIFIED, junk).status().code(),
        absl::StatusCode::kInvalidArgument)
        << junk;
  }

  // A token issued for state=DONE: good for DONE only.
  const v1::ListJobsResponse done_page =
      first_page(client_a.get(), v1::JOB_STATE_DONE);
  const std::string done_token = done_page.next_page_token();
  ASSERT_FALSE(done_token.empty());
  EXPECT_TRUE(next(client_a.get(), v1::JOB_STATE_DONE, done_token).ok());
  for (v1::JobState other : {v1::JOB_STATE_RUNNING, v1::JOB_STATE_UNSPECIFIED,
                             v1::JOB_STATE_FAILED, v1::JOB_STATE_CANCELLED}) {
    EXPECT_EQ(next(client_a.get(), other, done_token).status().code(),
              absl::StatusCode::kInvalidArgument)
        << v1::JobState_Name(other);
  }
  // And the unfiltered token is not good for DONE.
  EXPECT_EQ(next(client_a.get(), v1::JOB_STATE_DONE, token).status().code(),
            absl::StatusCode::kInvalidArgument);

  // Tokens die with the coordinator: after a restart (the journal brings
  // the same jobs back), the old one is refused and a new listing works.
  ASSERT_TRUE((*a)->RestartCoordinator().ok()) << (*a)->Logs();
  // The channel reconnects first (UNAVAILABLE until then).
  absl::StatusOr<v1::ListJobsResponse> stale;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  absl::Duration pause = absl::Milliseconds(5);
  while (true) {
    stale = next(client_a.get(), v1::JOB_STATE_UNSPECIFIED, token);
    if (stale.status().code() != absl::StatusCode::kUnavailable ||
        absl::Now() > deadline) {
      break;
    }
    absl::SleepFor(pause);  // Polling a remote condition, with backoff.
    pause = std::min(pause * 2, absl::Milliseconds(100));
  }
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kInvalidArgument)
      << stale.status();
  absl::StatusOr<std::vector<uint64_t>> after =
      ListAllPages(client_a.get(), v1::JOB_STATE_UNSPECIFIED, 1);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->size(), 3u);

  // The worker reconnects to the restarted coordinator before the stop.
  ASSERT_TRUE((*a)->WaitForWorkers(1, absl::Seconds(30)).ok());
  absl::Status stopped_a = (*a)->Stop();
  EXPECT_TRUE(stopped_a.ok()) << stopped_a;
  absl::Status stopped_b = (*b)->Stop();
  EXPECT_TRUE(stopped_b.ok()) << stopped_b;
}

TEST(JobsUsageTest, BadFlagsAreUsageErrors) {
  auto farm = LocalFarm::Start({}, {"--ephemeral"});
  ASSERT_TRUE(farm.ok()) << farm.status();
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"jobs", "--limit=0"},
           {"jobs", "--limit=-1"},
           {"jobs", "--limit=1000001"},
           {"jobs", "--limit=ten"},
           {"jobs", "--state=bogus"},
           {"jobs", "--state=RUNNING_"},
           {"jobs", "extra-arg"},
           {"jobs", "--output=yaml"},
           {"status", "--state=bogus"},
           {"jobs", "--progress=always"},
           {"map", "--state=done", "echo:a"},
           {"workers", "--limit=5"},
           {"map", "--progress=sometimes", "echo:a"},
       }) {
    CommandResult r = (*farm)->Qfarm(args);
    EXPECT_EQ(r.exit_code, 2)
        << absl::StrJoin(args, " ") << ": " << Diagnose(r);
    EXPECT_THAT(r.err, StartsWith("qfarm: ")) << absl::StrJoin(args, " ");
    EXPECT_EQ(r.out, "") << absl::StrJoin(args, " ");
  }
  // The message names what is wrong.
  EXPECT_THAT((*farm)->Qfarm({"jobs", "--state=bogus"}).err,
              HasSubstr("bogus"));
  EXPECT_THAT((*farm)->Qfarm({"jobs", "--limit=0"}).err, HasSubstr("limit"));
  // The good forms on an empty farm: a header (or nothing) and exit 0.
  CommandResult empty = (*farm)->Qfarm({"jobs", "--limit=1000000"});
  EXPECT_EQ(empty.exit_code, 0) << Diagnose(empty);
  EXPECT_EQ(Lines(empty.out).size(), 1u) << empty.out;
  CommandResult empty_json =
      (*farm)->Qfarm({"jobs", "--state=failed", "--output=json"});
  EXPECT_EQ(empty_json.exit_code, 0) << Diagnose(empty_json);
  EXPECT_EQ(empty_json.out, "");
  absl::Status stopped = (*farm)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
}

// The progress line: on a terminal (script(1) gives the command a
// pseudo-terminal and copies what it writes), or --progress=always.
class ProgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RunCommand({"/usr/bin/script", "--version"}).exit_code != 0) {
      GTEST_SKIP() << "no script(1)";
    }
    auto farm = LocalFarm::Start(
        {{.id = "worker-1", .mode = "thread", .slots = 4}}, {"--ephemeral"});
    ASSERT_TRUE(farm.ok()) << farm.status();
    farm_ = *std::move(farm);
  }

  void TearDown() override {
    if (farm_ == nullptr) return;
    absl::Status stopped = farm_->Stop();
    EXPECT_TRUE(stopped.ok()) << stopped;
  }

  // `qfarm --coordinator=... ARGS` on a pseudo-terminal: everything it
  // wrote to stdout and stderr, as the terminal got it.
  CommandResult OnTerminal(const std::vector<std::string>& args) {
    std::string command =
        absl::StrCat(BinPath("qfarm"), " --coordinator=", farm_->address());
    for (const std::string& arg : args) absl::StrAppend(&command, " ", arg);
    return RunCommand({"/usr/bin/script", "-qfec", command, "/dev/null"});
  }

  std::unique_ptr<LocalFarm> farm_;
};

// Checks a progress line was drawn for `job` and erased before the summary
// `summary` (which follows the last erase, with nothing of the line after).
void ExpectDrawnAndErased(const std::string& bytes, uint64_t job,
                          const std::string& summary, int total = 40) {
  const std::string label = absl::StrCat("[job ", job, "] ");
  EXPECT_THAT(bytes, HasSubstr("\r" + label)) << bytes;
  EXPECT_THAT(bytes, HasSubstr(absl::StrCat("/", total, "  ok "))) << bytes;
  const size_t erase = bytes.rfind("\x1b[K");
  ASSERT_NE(erase, std::string::npos) << bytes;
  // The last escape is the erase: "\r\x1b[K" with no line before it.
  ASSERT_GE(erase, 1u);
  EXPECT_EQ(bytes.substr(erase - 1, 4), "\r\x1b[K") << bytes;
  const size_t at = bytes.rfind(summary);
  ASSERT_NE(at, std::string::npos) << bytes;
  EXPECT_GT(at, erase) << bytes;
  EXPECT_EQ(bytes.find(label, erase), std::string::npos) << bytes;
  // Every drawing of the line ends with an erase to the end of the line.
  size_t drawn = 0;
  for (size_t pos = bytes.find("\r" + label); pos != std::string::npos;
       pos = bytes.find("\r" + label, pos + 1)) {
    ++drawn;
    const size_t end = bytes.find("\x1b[K", pos);
    ASSERT_NE(end, std::string::npos) << bytes;
    EXPECT_EQ(bytes.substr(pos, end - pos).find('\n'), std::string::npos)
        << "a line feed inside the line: " << bytes;
  }
  EXPECT_GE(drawn, 1u);
}

TEST_F(ProgressTest, MapOnATerminalDrawsAndErasesTheLine) {
  // 40 tasks of 100 ms on 4 slots: about a second, ten redraws.
  CommandResult r = OnTerminal({"map", "--repeat=40", "sleep:100ms"});
  ASSERT_EQ(r.exit_code, 0) << Diagnose(r);
  const uint64_t job = MapJobId(r.out);
  ASSERT_NE(job, 0u) << r.out;
  ASSERT_NO_FATAL_FAILURE(ExpectDrawnAndErased(
      r.out, job,
      absl::StrCat("job ", job, " on ", farm_->address(),
                   ": 40 tasks: 40 ok, 0 failed, 0 timed out, 0 cancelled "
                   "in ")));
  EXPECT_THAT(r.out, HasSubstr(" s (submitted to last result)"));
  EXPECT_THAT(r.out, HasSubstr("  running ")) << r.out;

  // --progress=never on the terminal: no line.
  CommandResult never =
      OnTerminal({"map", "--progress=never", "--repeat=40", "sleep:100ms"});
  ASSERT_EQ(never.exit_code, 0) << Diagnose(never);
  EXPECT_THAT(never.out, Not(HasSubstr("[job "))) << never.out;
  EXPECT_THAT(never.out, Not(HasSubstr("\x1b["))) << never.out;
}

// Results on stdout and the line on stderr share the terminal: a result
// row must not be written onto the drawn line (it would leave "[job 1]
// 8/12 ... eta 0.1s   8  ok ..." in the scrollback). Each drawing is
// followed by the next drawing or an erase ("\r"), never by other text.
TEST_F(ProgressTest, ResultRowsAreNotWrittenOntoTheLine) {
  CommandResult r = OnTerminal({"map", "--repeat=40", "sleep:100ms"});
  ASSERT_EQ(r.exit_code, 0) << Diagnose(r);
  const uint64_t job = MapJobId(r.out);
  ASSERT_NE(job, 0u) << r.out;
  const std::string label = absl::StrCat("\r[job ", job, "] ");
  size_t drawn = 0;
  for (size_t pos = r.out.find(label); pos != std::string::npos;
       pos = r.out.find(label, pos + 1)) {
    ++drawn;
    const size_t end = r.out.find("\x1b[K", pos);
    ASSERT_NE(end, std::string::npos) << r.out;
    ASSERT_LT(end + 3, r.out.size()) << r.out;
    EXPECT_EQ(r.out[end + 3], '\r')
        << "after the drawing at byte " << pos << ": "
        << r.out.substr(pos, end + 40 - pos);
  }
  EXPECT_GE(drawn, 1u) << r.out;
}

TEST_F(ProgressTest, NoLineWhenStderrIsAFileUnlessAlways) {
  CommandResult plain = farm_->Qfarm({"map", "--repeat=40", "sleep:100ms"});
  ASSERT_EQ(plain.exit_code, 0) << Diagnose(plain);
  const uint64_t job = MapJobId(plain.err);
  ASSERT_NE(job, 0u) << plain.err;
  EXPECT_THAT(plain.err, Not(HasSubstr("\r")));
  EXPECT_THAT(plain.err, Not(HasSubstr("\x1b[")));
  EXPECT_THAT(plain.err, Not(HasSubstr("[job ")));
  EXPECT_THAT(plain.err, StartsWith(absl::StrCat("job ", job, " on ")))
      << plain.err;
  EXPECT_EQ(Lines(plain.err).size(), 1u) << plain.err;
  // Results on stdout are never decorated.
  EXPECT_THAT(plain.out, Not(HasSubstr("\x1b[")));

  CommandResult always =
      farm_->Qfarm({"map", "--progress=always", "--repeat=40", "sleep:100ms"});
  ASSERT_EQ(always.exit_code, 0) << Diagnose(always);
  const uint64_t always_job = MapJobId(always.err);
  ASSERT_NE(always_job, 0u) << always.err;
  ASSERT_NO_FATAL_FAILURE(ExpectDrawnAndErased(
      always.err, always_job,
      absl::StrCat("job ", always_job, " on ", farm_->address(),
                   ": 40 tasks: 40 ok")));
  EXPECT_THAT(always.out, Not(HasSubstr("\x1b[")));
}

TEST_F(ProgressTest, WatchOnATerminalDrawsAndErasesTheLine) {
  // Long enough (2 s on 4 slots) that the watch, started by a second
  // process on a loaded machine, still finds it running.
  CommandResult submitted = farm_->Qfarm({"submit", "--repeat=8", "sleep:1s"});
  const uint64_t job = SubmittedId(submitted);
  ASSERT_NE(job, 0u) << Diagnose(submitted);
  CommandResult r = OnTerminal({"watch", absl::StrCat(job)});
  ASSERT_EQ(r.exit_code, 0) << Diagnose(r);
  ASSERT_NO_FATAL_FAILURE(ExpectDrawnAndErased(
      r.out, job, absl::StrCat("job ", job, ": 8 tasks: 8 ok, 0 failed"), 8));
  EXPECT_THAT(r.out, HasSubstr("(submitted to last result)"));
}

}  // namespace
}  // namespace qfarm::testing
