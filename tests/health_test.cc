// The health-only ports of the real binaries (--health-listen): the
// coordinator's answers like its main port and serves nothing else; a
// worker's is SERVING while it has a coordinator, and NOT_SERVING once it
// has had none for --unreachable-grace, until one is back.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "qfarm/v1/farm.grpc.pb.h"
#include "tests/subprocess.h"

namespace qfarm::testing {
namespace {

using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

// The address in the first line of `process`'s stdout that starts with
// `prefix`; "" when none comes within 20 s.
std::string ReadAddress(Subprocess& process, absl::string_view prefix) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (true) {
    absl::StatusOr<std::string> line = process.ReadLine(deadline - absl::Now());
    if (!line.ok()) return "";
    if (absl::StartsWith(*line, prefix)) {
      return line->substr(prefix.size());
    }
  }
}

// Health/Check in plaintext: the serving status, or the call's error code.
absl::StatusOr<HealthCheckResponse::ServingStatus> Check(
    const std::string& address, const std::string& service = "") {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return response.status();
}

// Asks `address` until it answers `wanted`; returns when it did, or
// InfiniteFuture() when it did not within `timeout`.
absl::Time AwaitStatus(const std::string& address,
                       HealthCheckResponse::ServingStatus wanted,
                       absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(5);
  while (absl::Now() < deadline) {
    auto status = Check(address);
    if (status.ok() && *status == wanted) return absl::Now();
    absl::SleepFor(pause);  // Polling another process, with backoff.
    pause = std::min(pause * 2, absl::Milliseconds(100));
  }
  return absl::InfiniteFuture();
}

struct Coordinator {
  std::unique_ptr<Subprocess> process;
  std::string address;
  std::string health;
};

Coordinator StartCoordinator(const std::string& listen,
                             const std::string& log) {
  Coordinator c;
  auto started =
      Subprocess::Start({BinPath("qfarm-coordinator"), "--listen=" + listen,
                         "--ephemeral", "--health-listen=127.0.0.1:0"},
                        {.stderr_path = log});
  if (!started.ok()) return c;
  c.process = *std::move(started);
  c.address = ReadAddress(*c.process, "qfarm-coordinator listening on ");
  c.health = ReadAddress(*c.process, "qfarm-coordinator health on ");
  return c;
}

TEST(HealthTest, CoordinatorHealthPortServesOnlyTheHealthService) {
  TempDir dir;
  Coordinator coordinator =
      StartCoordinator("127.0.0.1:0", dir.path() + "/coordinator.log");
  ASSERT_FALSE(coordinator.health.empty());
  EXPECT_NE(coordinator.health, coordinator.address);
  auto status = Check(coordinator.health);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, HealthCheckResponse::SERVING);
  EXPECT_EQ(Check(coordinator.health, "qfarm.v1.Farm").status().code(),
            absl::StatusCode::kNotFound);

  // The farm's own service is not there.
  auto farm = v1::Farm::NewStub(grpc::CreateChannel(
      coordinator.health, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  v1::ListWorkersResponse workers;
  EXPECT_EQ(farm->ListWorkers(&context, v1::ListWorkersRequest(), &workers)
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);

  coordinator.process->Signal(SIGTERM);
  EXPECT_EQ(coordinator.process->Wait(), 0);
}

TEST(HealthTest, WorkerIsNotServingAfterTheUnreachableGraceUntilItsBack) {
  TempDir dir;
  Coordinator coordinator =
      StartCoordinator("127.0.0.1:0", dir.path() + "/coordinator.log");
  ASSERT_FALSE(coordinator.address.empty());
  constexpr absl::Duration kGrace = absl::Seconds(2);
  auto worker = Subprocess::Start(
      {BinPath("qfarm-worker"), "--coordinator=" + coordinator.address,
       "--id=h1", "--health-listen=127.0.0.1:0",
       absl::StrCat("--unreachable-grace=", absl::FormatDuration(kGrace))},
      {.stderr_path = dir.path() + "/worker.log"});
  ASSERT_TRUE(worker.ok()) << worker.status();
  const std::string health = ReadAddress(**worker, "qfarm-worker health on ");
  ASSERT_FALSE(health.empty());
  EXPECT_NE(
      AwaitStatus(health, HealthCheckResponse::SERVING, absl::Seconds(20)),
      absl::InfiniteFuture());

  // The coordinator goes: the worker stays SERVING for the grace, then not.
  const absl::Time gone = absl::Now();
  coordinator.process->Signal(SIGTERM);
  ASSERT_EQ(coordinator.process->Wait(), 0);
  const absl::Time not_serving =
      AwaitStatus(health, HealthCheckResponse::NOT_SERVING, absl::Seconds(30));
  ASSERT_NE(not_serving, absl::InfiniteFuture());
  EXPECT_GE(not_serving - gone, kGrace);

  // Back on the same port: the worker reconnects and is SERVING again.
  Coordinator back =
      StartCoordinator(coordinator.address, dir.path() + "/coordinator2.log");
  ASSERT_EQ(back.address, coordinator.address);
  EXPECT_NE(
      AwaitStatus(health, HealthCheckResponse::SERVING, absl::Seconds(30)),
      absl::InfiniteFuture());

  (*worker)->Signal(SIGTERM);
  EXPECT_EQ((*worker)->Wait(), 0);
  back.process->Signal(SIGTERM);
  EXPECT_EQ(back.process->Wait(), 0);
}

TEST(HealthTest, BadHealthFlagsAreUsageErrors) {
  CommandResult r =
      RunCommand({BinPath("qfarm-worker"), "--coordinator=127.0.0.1:1",
                  "--health-listen=nonsense"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--health-listen"));
  r = RunCommand({BinPath("qfarm-worker"), "--coordinator=127.0.0.1:1",
                  "--health-listen=127.0.0.1:0", "--unreachable-grace=0s"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--unreachable-grace"));
  r = RunCommand({BinPath("qfarm-coordinator"), "--listen=127.0.0.1:0",
                  "--ephemeral", "--health-listen=127.0.0.1:99999"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--health-listen"));
}

}  // namespace
}  // namespace qfarm::testing
