// Accepted means durable, with the journal settings production uses: the
// coordinator's args in deploy/k8s/base/coordinator.yaml (and the binary's
// defaults for what they leave out). A job answered OK by SubmitJob or
// accepted on a Session survives a SIGKILL sent the moment the answer
// arrives. And a coordinator whose journal cannot write exits 1.
#include <signal.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/farm_client.h"
#include "common/grpc_options.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/local_farm.h"
#include "tests/time_scale.h"
#include "tests/wire_check.h"

namespace qfarm::testing {
namespace {

using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream buffer;
  buffer << file.rdbuf();
  return buffer.str();
}

// The `args:` list of the qfarm-coordinator container in the base
// manifest, comments dropped. (Read from the file as written: no kubectl.)
std::vector<std::string> ManifestCoordinatorArgs() {
  const std::string text = ReadFile(
      absl::StrCat(QFARM_SOURCE_DIR, "/deploy/k8s/base/coordinator.yaml"));
  std::vector<std::string> args;
  bool in_coordinator = false;
  bool in_args = false;
  size_t args_indent = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    const std::string line(raw);
    const absl::string_view stripped = absl::StripLeadingAsciiWhitespace(line);
    const size_t indent = line.size() - stripped.size();
    if (stripped.empty() || absl::StartsWith(stripped, "#")) continue;
    if (absl::StartsWith(stripped, "- qfarm-coordinator")) {
      in_coordinator = true;
      continue;
    }
    if (in_coordinator && stripped == "args:") {
      in_args = true;
      args_indent = indent;
      continue;
    }
    if (in_args) {
      if (indent < args_indent ||
          (indent == args_indent && !absl::StartsWith(stripped, "- "))) {
        break;
      }
      if (absl::StartsWith(stripped, "- ")) {
        args.emplace_back(absl::StripAsciiWhitespace(stripped.substr(2)));
      }
    }
  }
  return args;
}

std::string FlagName(const std::string& arg) {
  return arg.substr(0, arg.find('='));
}

TEST(DurabilityTest, ProductionJournalsWithAFsyncPerCommit) {
  const std::vector<std::string> args = ManifestCoordinatorArgs();
  ASSERT_FALSE(args.empty()) << "no args for qfarm-coordinator in "
                                "deploy/k8s/base/coordinator.yaml";
  bool data_dir = false;
  for (const std::string& arg : args) {
    EXPECT_NE(FlagName(arg), "--ephemeral") << "production keeps no journal";
    if (FlagName(arg) == "--journal-sync") {
      EXPECT_EQ(arg, "--journal-sync=full");
    }
    if (FlagName(arg) == "--data-dir") data_dir = true;
  }
  EXPECT_TRUE(data_dir) << "production must name its journal's volume";
  // What the manifest leaves out is the binary's default: full.
  CommandResult help = RunCommand({BinPath("qfarm-coordinator"), "--help"});
  ASSERT_EQ(help.exit_code, 0);
  const size_t at = help.out.find("--journal-sync=VALUE");
  ASSERT_NE(at, std::string::npos) << help.out;
  const std::string paragraph =
      help.out.substr(at, help.out.find("\n  --", at + 1) - at);
  EXPECT_THAT(paragraph, HasSubstr("(default: full)")) << paragraph;
}

// The manifest's args, made local: port 0, a temp data dir, metrics and
// health on port 0.
std::vector<std::string> LocalProductionFlags(const std::string& data_dir) {
  std::vector<std::string> flags;
  for (const std::string& arg : ManifestCoordinatorArgs()) {
    const std::string name = FlagName(arg);
    if (name == "--listen") continue;  // LocalFarm listens on port 0.
    if (name == "--data-dir") {
      flags.push_back("--data-dir=" + data_dir);
    } else if (name == "--metrics-listen" || name == "--health-listen") {
      flags.push_back(name + "=127.0.0.1:0");
    } else {
      flags.push_back(arg);
    }
  }
  return flags;
}

struct Acked {
  uint64_t job = 0;
  std::vector<v1::Task> tasks;
  std::string via;
};

TEST(DurabilityTest, AnAnsweredSubmitSurvivesAnImmediateSigkill) {
  TempDir dir;
  const std::vector<std::string> flags =
      LocalProductionFlags(dir.path() + "/data");
  ASSERT_FALSE(flags.empty());
  // No worker yet: the jobs wait in the queue, and in the journal.
  auto farm = LocalFarm::Start({}, flags);
  ASSERT_TRUE(farm.ok()) << farm.status();
  const std::string address = (*farm)->address();

  absl::Mutex mu;
  std::vector<Acked> acked;
  constexpr int kRounds = 8;
  constexpr int kSubmitters = 3;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<bool> killed{false};
    Subprocess* coordinator = (*farm)->coordinator();
    // The first answer kills the coordinator, while the other submitters'
    // jobs are being journaled.
    auto answered = [&](uint64_t job, std::vector<v1::Task> tasks,
                        std::string via) {
      if (!killed.exchange(true)) coordinator->Signal(SIGKILL);
      absl::MutexLock lock(&mu);
      acked.push_back({job, std::move(tasks), std::move(via)});
    };
    std::vector<std::thread> submitters;
    for (int t = 0; t < kSubmitters; ++t) {
      submitters.emplace_back([&, t] {
        auto client = client::FarmClient::Create({.address = address});
        std::mt19937_64 rng(round * 100 + t);
        for (int k = 0; !killed; ++k) {
          std::vector<v1::Task> tasks = DistinctTasks(
              absl::StrCat("r", round, "t", t, "k", k), {.echoes = 5 + t}, rng);
          absl::StatusOr<uint64_t> job = client->SubmitJob(tasks);
          if (!job.ok()) break;  // The coordinator is gone.
          answered(*job, std::move(tasks), "SubmitJob");
        }
      });
    }
    std::thread session_thread([&] {
      auto client = client::FarmClient::Create({.address = address});
      std::unique_ptr<client::FarmSession> session = client->OpenSession();
      std::mt19937_64 rng(round * 100 + 99);
      std::vector<v1::Task> tasks = DistinctTasks(
          absl::StrCat("r", round, "session"), {.echoes = 9}, rng);
      // No worker runs it: the call ends when the coordinator is killed.
      (void)session->RunAsCompleted(
          tasks, [](v1::TaskResult&&) {},
          [&](uint64_t job) { answered(job, tasks, "Session"); });
    });
    for (std::thread& thread : submitters) thread.join();
    // Should no submit have been answered, the kill still ends the
    // Session's wait.
    if (!killed.exchange(true)) coordinator->Signal(SIGKILL);
    session_thread.join();
    absl::Status restarted = (*farm)->RestartCoordinator();
    ASSERT_TRUE(restarted.ok()) << restarted;
    // Every answered job is there after the restart, whole.
    auto client = client::FarmClient::Create({.address = address});
    absl::MutexLock lock(&mu);
    for (const Acked& a : acked) {
      absl::StatusOr<v1::JobInfo> info = client->GetJob(a.job);
      ASSERT_TRUE(info.ok())
          << "job " << a.job << " (" << a.via
          << ") was answered, then lost: " << info.status() << "\n"
          << (*farm)->Logs();
      EXPECT_EQ(info->total(), a.tasks.size()) << "job " << a.job;
    }
  }
  EXPECT_GE(acked.size(), static_cast<size_t>(kRounds));

  // A worker runs them all: each job's tasks came back as they were sent.
  ASSERT_TRUE(
      (*farm)->StartWorker({.id = "w1", .mode = "async", .slots = 64}).ok());
  auto stub = v1::Farm::NewStub(MakeChannel(address));
  ResultLedger ledger;
  for (const Acked& a : acked) {
    ledger.AddJob(a.job, a.tasks);
    absl::Status watched = WatchRaw(stub.get(), a.job, &ledger,
                                    absl::Now() + Scaled(absl::Seconds(60)));
    EXPECT_TRUE(watched.ok()) << "job " << a.job << ": " << watched;
    EXPECT_TRUE(ledger.Complete(a.job)) << "job " << a.job;
  }
  EXPECT_EQ(ledger.problem_count(), 0u) << ledger.Report();
  absl::Status stopped = (*farm)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
}

// A coordinator whose journal cannot write (here: a file size limit, as a
// full disk would) refuses what it cannot make durable, stops, and exits 1.
TEST(JournalFailureTest, CoordinatorExitsOneWhenItsJournalCannotWrite) {
  TempDir dir;
  const std::string log = dir.path() + "/coordinator.log";
  // sh ignores SIGXFSZ and limits file sizes to 1-2 MiB (ulimit's blocks
  // are 512 or 1024 bytes), then becomes the coordinator: a write past
  // the limit fails with EFBIG.
  auto coordinator = Subprocess::Start(
      {"/bin/sh", "-c", "trap '' XFSZ; ulimit -f 2048; exec \"$0\" \"$@\"",
       BinPath("qfarm-coordinator"), "--listen=127.0.0.1:0",
       "--data-dir=" + dir.path() + "/data"},
      {.stderr_path = log});
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  absl::StatusOr<std::string> line =
      (*coordinator)->ReadLine(absl::Seconds(20));
  ASSERT_TRUE(line.ok()) << line.status() << ReadFile(log);
  const std::string address(
      absl::StripPrefix(*line, "qfarm-coordinator listening on "));
  auto client = client::FarmClient::Create({.address = address});
  std::mt19937_64 rng(3);
  // Small jobs fit.
  ASSERT_TRUE(
      client->SubmitJob(DistinctTasks("small", {.echoes = 10}, rng)).ok())
      << ReadFile(log);
  // A job of 5 MB cannot be journaled: it is not answered OK.
  std::vector<v1::Task> big = DistinctTasks("big", {.echoes = 80}, rng);
  for (v1::Task& t : big) t.set_text(t.text() + std::string(64 << 10, 'x'));
  absl::StatusOr<uint64_t> refused = client->SubmitJob(big);
  EXPECT_FALSE(refused.ok())
      << "job " << *refused << " answered OK, yet not journaled";
  absl::StatusOr<int> code = (*coordinator)->WaitFor(Scaled(absl::Seconds(30)));
  ASSERT_TRUE(code.ok()) << "the coordinator goes on without its journal\n"
                         << ReadFile(log);
  EXPECT_EQ(*code, 1) << ReadFile(log);
  EXPECT_THAT(ReadFile(log), HasSubstr("journal failed"));
}

}  // namespace
}  // namespace qfarm::testing
