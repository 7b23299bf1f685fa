// Every input rule through the real coordinator binary and its gRPC
// services: the code and a message naming the field, the value and the
// rule; and a refused request disturbs nothing else.
#include <grpcpp/client_context.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "common/grpc_options.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "qfarm/v1/farm.grpc.pb.h"
#include "qfarm/v1/worker_link.grpc.pb.h"
#include "tests/local_farm.h"

namespace qfarm::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class ValidationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto farm =
        LocalFarm::Start({{.id = "w1", .mode = "async", .slots = 50}},
                         {"--max-sleep=1h", "--max-cpu-units=1000000",
                          "--max-payload-bytes=100", "--max-tasks-per-job=50",
                          "--max-queued=1000", "--max-jobs-per-client=3"});
    ASSERT_TRUE(farm.ok()) << farm.status();
    farm_ = farm->release();
  }
  static void TearDownTestSuite() {
    if (farm_ != nullptr) {
      EXPECT_TRUE(farm_->Stop().ok());
      delete farm_;
      farm_ = nullptr;
    }
  }

  void SetUp() override {
    ASSERT_NE(farm_, nullptr);
    stub_ = v1::Farm::NewStub(MakeChannel(farm_->address()));
  }

  grpc::Status Submit(const std::vector<v1::Task>& tasks,
                      uint64_t* job = nullptr) {
    v1::SubmitJobRequest request;
    for (const v1::Task& t : tasks) *request.add_tasks() = t;
    v1::SubmitJobResponse response;
    grpc::ClientContext context;
    grpc::Status status = stub_->SubmitJob(&context, request, &response);
    if (job != nullptr) *job = response.job_id();
    return status;
  }

  static v1::Task Task(std::string kind, int64_t arg, std::string text = "") {
    v1::Task t;
    t.set_kind(std::move(kind));
    t.set_arg(arg);
    t.set_text(std::move(text));
    return t;
  }

  static LocalFarm* farm_;
  std::unique_ptr<v1::Farm::Stub> stub_;
};
LocalFarm* ValidationTest::farm_ = nullptr;

#define EXPECT_REFUSED(status, code, ...)                                     \
  do {                                                                        \
    grpc::Status s_ = (status);                                               \
    EXPECT_EQ(s_.error_code(), grpc::StatusCode::code) << s_.error_message(); \
    EXPECT_THAT(s_.error_message(), AllOf(__VA_ARGS__));                      \
  } while (false)

TEST_F(ValidationTest, BadKindNames) {
  EXPECT_REFUSED(Submit({Task("", 0)}), INVALID_ARGUMENT, HasSubstr("task 0"),
                 HasSubstr("kind name is empty"));
  EXPECT_REFUSED(Submit({Task("echo", 0, "x"), Task("re size", 0)}),
                 INVALID_ARGUMENT, HasSubstr("task 1"),
                 HasSubstr("kind name \"re size\" must be letters, digits"));
  EXPECT_REFUSED(Submit({Task(std::string(65, 'k'), 0)}), INVALID_ARGUMENT,
                 HasSubstr("of 65 bytes is over the maximum of 64"));
}

TEST_F(ValidationTest, SleepNegativeOrOverTheMaximum) {
  EXPECT_REFUSED(Submit({Task("echo", 0, "ok"), Task("sleep", -5)}),
                 INVALID_ARGUMENT, HasSubstr("task 1"),
                 HasSubstr("sleep arg -5 ms is negative"));
  EXPECT_REFUSED(Submit({Task("sleep", 2 * 3600 * 1000)}), INVALID_ARGUMENT,
                 HasSubstr("sleep arg 7200000 ms"),
                 HasSubstr("over the maximum of 1h"));
  v1::Task timeout = Task("sleep", 1);
  timeout.set_timeout_ms(-1);
  EXPECT_REFUSED(Submit({timeout}), INVALID_ARGUMENT,
                 HasSubstr("timeout_ms -1"));
}

TEST_F(ValidationTest, CpuUnitsOverTheMaximum) {
  EXPECT_REFUSED(Submit({Task("cpu", 2'000'000)}), INVALID_ARGUMENT,
                 HasSubstr("cpu arg 2000000"), HasSubstr("outside 0..1000000"));
}

TEST_F(ValidationTest, UrlsMustBeHttpWithAHost) {
  EXPECT_REFUSED(Submit({Task("http", 0, "ftp://h/x")}), INVALID_ARGUMENT,
                 HasSubstr("ftp://h/x"), HasSubstr("http:// or https://"));
  EXPECT_REFUSED(Submit({Task("http", 0, "http:///x")}), INVALID_ARGUMENT,
                 HasSubstr("with a host"));
  EXPECT_REFUSED(Submit({Task("http", 0, "")}), INVALID_ARGUMENT,
                 HasSubstr("http url \"\""));
}

TEST_F(ValidationTest, PayloadOverTheMaximum) {
  EXPECT_REFUSED(Submit({Task("echo", 0, std::string(101, 'x'))}),
                 INVALID_ARGUMENT, HasSubstr("text of 101 bytes"),
                 HasSubstr("maximum of 100"));
}

TEST_F(ValidationTest, EmptyJobAndJobOverTheTaskLimit) {
  EXPECT_REFUSED(Submit({}), INVALID_ARGUMENT, HasSubstr("no tasks"));
  std::vector<v1::Task> many(51, Task("echo", 0, "x"));
  EXPECT_REFUSED(Submit(many), INVALID_ARGUMENT, HasSubstr("51 tasks"),
                 HasSubstr("maximum of 50"), HasSubstr("--max-tasks-per-job"));
}

TEST_F(ValidationTest, UnknownJobsAreNotFound) {
  grpc::ClientContext context;
  v1::GetJobRequest request;
  request.set_job_id(424242);
  v1::JobInfo info;
  EXPECT_REFUSED(stub_->GetJob(&context, request, &info), NOT_FOUND,
                 HasSubstr("job 424242 not found"));
}

TEST_F(ValidationTest, WorkerHelloWithZeroOrAbsurdSlots) {
  for (uint32_t slots : {0u, 2'000'000u}) {
    auto link = v1::WorkerLink::NewStub(MakeChannel(farm_->address()));
    grpc::ClientContext context;
    auto stream = link->Connect(&context);
    v1::WorkerMessage hello;
    hello.mutable_hello()->set_worker_id("bad");
    hello.mutable_hello()->set_slots(slots);
    hello.mutable_hello()->add_kinds("echo");
    stream->Write(hello);
    v1::CoordinatorMessage in;
    while (stream->Read(&in)) {
    }
    EXPECT_REFUSED(stream->Finish(), INVALID_ARGUMENT,
                   HasSubstr(absl::StrCat("hello.slots ", slots)),
                   HasSubstr("1..1000000"));
  }
}

TEST_F(ValidationTest, TooManyUnfinishedJobsPerClient) {
  // 3 unfinished jobs is this client's bound; sleeps keep them unfinished.
  std::vector<uint64_t> jobs;
  grpc::Status last;
  for (int i = 0; i < 4; ++i) {
    uint64_t job = 0;
    last = Submit(std::vector<v1::Task>(40, Task("sleep", 30'000)), &job);
    if (last.ok()) jobs.push_back(job);
  }
  EXPECT_EQ(jobs.size(), 3u);
  EXPECT_REFUSED(last, RESOURCE_EXHAUSTED, HasSubstr("3 unfinished jobs"),
                 HasSubstr("--max-jobs-per-client=3"));
  for (uint64_t job : jobs) {
    grpc::ClientContext context;
    v1::CancelJobRequest request;
    request.set_job_id(job);
    v1::CancelJobResponse response;
    EXPECT_TRUE(stub_->CancelJob(&context, request, &response).ok());
  }
  // (A full queue, RESOURCE_EXHAUSTED with how full it is, is covered by
  // coordinator_server_test against the same service.)
}

// A malformed job in the middle of others leaves their results intact.
TEST_F(ValidationTest, RefusedJobDisturbsNothingElse) {
  uint64_t good = 0;
  std::vector<v1::Task> tasks;
  for (int i = 0; i < 40; ++i) {
    tasks.push_back(Task("echo", 0, absl::StrCat("good-", i)));
  }
  tasks.push_back(Task("sleep", 200));
  ASSERT_TRUE(Submit(tasks, &good).ok());
  EXPECT_FALSE(Submit({Task("echo", 0, "fine"), Task("sleep", -1)}).ok());
  CommandResult watched =
      farm_->Qfarm({"watch", absl::StrCat(good), "--output=json"});
  EXPECT_EQ(watched.exit_code, 0) << watched.err;
  auto lines = ParseJsonLines(watched.out);
  ASSERT_TRUE(lines.ok());
  ASSERT_EQ(lines->size(), 41u);
  std::set<std::string> values;
  for (const JsonObject& o : *lines) values.insert(o.at("value"));
  for (int i = 0; i < 40; ++i) {
    EXPECT_TRUE(values.count(absl::StrCat("good-", i))) << i;
  }
}

}  // namespace
}  // namespace qfarm::testing
