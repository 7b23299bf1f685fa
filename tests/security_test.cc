// TLS, mutual TLS and tokens through the real binaries. Certificates are
// made at test time with openssl; no private key is committed.
#include <chrono>
#include <fstream>
#include <iterator>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/farm_client.h"
#include "common/auth.h"
#include "common/grpc_options.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "qfarm/v1/worker_link.grpc.pb.h"
#include "tests/local_farm.h"

namespace qfarm::testing {
namespace {

using ::testing::HasSubstr;

// A CA, a server certificate for 127.0.0.1 and a client certificate.
class Pki {
 public:
  Pki() {
    const std::string d = dir_.path();
    Run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
         "1", "-subj", "/CN=qfarm-test-ca", "-keyout", d + "/ca.key", "-out",
         d + "/ca.pem"});
    Issue("server", "/CN=127.0.0.1",
          "subjectAltName=IP:127.0.0.1,DNS:localhost");
    Issue("client", "/CN=qfarm-test-client", "extendedKeyUsage=clientAuth");
    // A CA the server does not trust, with a client certificate of its own.
    Run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
         "1", "-subj", "/CN=stranger-ca", "-keyout", d + "/stranger.key",
         "-out", d + "/stranger.pem"});
    Issue("stranger-client", "/CN=qfarm-test-client",
          "extendedKeyUsage=clientAuth", "stranger");
  }

  std::string path(const std::string& name) const {
    return absl::StrCat(dir_.path(), "/", name);
  }
  bool ok() const { return ok_; }

 private:
  // A certificate for `name` signed by the CA `ca` (ca.pem, ca.key).
  void Issue(const std::string& name, const std::string& subject,
             const std::string& ext, const std::string& ca = "ca") {
    const std::string d = dir_.path();
    Run({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
         "-keyout", d + "/" + name + ".key", "-out", d + "/" + name + ".csr"});
    std::ofstream(d + "/" + name + ".ext") << ext << "\n";
    Run({"openssl", "x509", "-req", "-in", d + "/" + name + ".csr", "-CA",
         d + "/" + ca + ".pem", "-CAkey", d + "/" + ca + ".key",
         "-CAcreateserial", "-days", "1", "-extfile", d + "/" + name + ".ext",
         "-out", d + "/" + name + ".pem"});
  }
  void Run(const std::vector<std::string>& argv) {
    std::vector<std::string> full = {"/usr/bin/env"};
    full.insert(full.end(), argv.begin(), argv.end());
    CommandResult result = RunCommand(full);
    if (result.exit_code != 0) {
      ok_ = false;
      ADD_FAILURE() << "openssl failed: " << result.err;
    }
  }

  TempDir dir_;
  bool ok_ = true;
};

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = new Pki; }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }
  static Pki* pki_;
};
Pki* TlsTest::pki_ = nullptr;

TEST_F(TlsTest, TlsFarmWorksAndPlaintextClientFailsCleanly) {
  ASSERT_TRUE(pki_->ok());
  auto farm = LocalFarm::Start(
      {{.id = "w1", .extra_flags = {"--tls-ca=" + pki_->path("ca.pem")}}},
      {"--tls-cert=" + pki_->path("server.pem"),
       "--tls-key=" + pki_->path("server.key")},
      {"--tls-ca=" + pki_->path("ca.pem")});
  ASSERT_TRUE(farm.ok()) << farm.status();
  // Qfarm() adds --tls-ca; RunCommand below goes without it.
  CommandResult r = (*farm)->Qfarm({"map", "echo:secure"});
  EXPECT_EQ(r.exit_code, 0) << r.err << (*farm)->Logs();
  EXPECT_THAT(r.out, HasSubstr("secure"));
  const std::string coordinator = "--coordinator=" + (*farm)->address();
  CommandResult plain =
      RunCommand({BinPath("qfarm"), coordinator, "map", "echo:x"});
  EXPECT_EQ(plain.exit_code, 1);
  EXPECT_THAT(plain.err, HasSubstr("UNAVAILABLE"));
  // A CA that did not sign the server's certificate: refused.
  CommandResult stranger =
      RunCommand({BinPath("qfarm"), coordinator,
                  "--tls-ca=" + pki_->path("stranger.pem"), "map", "echo:x"});
  EXPECT_EQ(stranger.exit_code, 1);
  EXPECT_TRUE((*farm)->Stop().ok());
}

TEST_F(TlsTest, MutualTlsNeedsAClientCertificate) {
  ASSERT_TRUE(pki_->ok());
  const std::vector<std::string> worker_tls = {
      "--tls-ca=" + pki_->path("ca.pem"),
      "--tls-cert=" + pki_->path("client.pem"),
      "--tls-key=" + pki_->path("client.key")};
  auto farm = LocalFarm::Start({{.id = "w1", .extra_flags = worker_tls}},
                               {"--tls-cert=" + pki_->path("server.pem"),
                                "--tls-key=" + pki_->path("server.key"),
                                "--tls-ca=" + pki_->path("ca.pem")},
                               worker_tls);
  ASSERT_TRUE(farm.ok()) << farm.status();
  const std::string coordinator = "--coordinator=" + (*farm)->address();
  CommandResult without =
      RunCommand({BinPath("qfarm"), coordinator,
                  "--tls-ca=" + pki_->path("ca.pem"), "map", "echo:x"});
  EXPECT_EQ(without.exit_code, 1);
  EXPECT_THAT(without.err, HasSubstr("UNAVAILABLE"));
  CommandResult with = (*farm)->Qfarm({"map", "echo:mutual"});
  EXPECT_EQ(with.exit_code, 0) << with.err;
  EXPECT_THAT(with.out, HasSubstr("mutual"));
  EXPECT_TRUE((*farm)->Stop().ok());
}

// A client certificate signed by a CA the coordinator does not trust is
// refused on both services, beside one from its own CA, which is accepted.
TEST_F(TlsTest, MutualTlsRefusesACertificateFromAStrangersCa) {
  ASSERT_TRUE(pki_->ok());
  const std::vector<std::string> worker_tls = {
      "--tls-ca=" + pki_->path("ca.pem"),
      "--tls-cert=" + pki_->path("client.pem"),
      "--tls-key=" + pki_->path("client.key")};
  auto farm =
      LocalFarm::Start({{.id = "w1", .extra_flags = worker_tls}},
                       {"--tls-cert=" + pki_->path("server.pem"),
                        "--tls-key=" + pki_->path("server.key"),
                        "--tls-ca=" + pki_->path("ca.pem"), "--ephemeral"},
                       worker_tls);
  ASSERT_TRUE(farm.ok()) << farm.status();
  const std::string coordinator = "--coordinator=" + (*farm)->address();
  CommandResult stranger = RunCommand(
      {BinPath("qfarm"), coordinator, "--tls-ca=" + pki_->path("ca.pem"),
       "--tls-cert=" + pki_->path("stranger-client.pem"),
       "--tls-key=" + pki_->path("stranger-client.key"), "map", "echo:x"});
  EXPECT_EQ(stranger.exit_code, 1) << stranger.out;
  EXPECT_THAT(stranger.err, HasSubstr("UNAVAILABLE"));
  CommandResult own = (*farm)->Qfarm({"map", "echo:trusted"});
  EXPECT_EQ(own.exit_code, 0) << own.err;
  EXPECT_THAT(own.out, HasSubstr("trusted"));

  // The worker service, spoken to directly: the stream gets a welcome only
  // with the trusted certificate.
  auto connect = [&](const std::string& name) {
    auto credentials =
        MakeChannelCredentials({.cert = pki_->path(name + ".pem"),
                                .key = pki_->path(name + ".key"),
                                .ca = pki_->path("ca.pem")});
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    auto stub =
        v1::WorkerLink::NewStub(MakeChannel((*farm)->address(), *credentials));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    auto stream = stub->Connect(&context);
    v1::WorkerMessage hello;
    hello.mutable_hello()->set_worker_id("tls-probe");
    hello.mutable_hello()->set_slots(1);
    hello.mutable_hello()->add_kinds("echo");
    stream->Write(hello);
    v1::CoordinatorMessage in;
    const bool welcomed = stream->Read(&in) && in.has_welcome();
    if (welcomed) stream->WritesDone();
    while (stream->Read(&in)) {
    }
    const grpc::Status status = stream->Finish();
    return std::make_pair(welcomed, status.error_code());
  };
  EXPECT_EQ(connect("stranger-client"),
            std::make_pair(false, grpc::StatusCode::UNAVAILABLE));
  EXPECT_EQ(connect("client"), std::make_pair(true, grpc::StatusCode::OK));
  EXPECT_TRUE((*farm)->Stop().ok());
}

TEST_F(TlsTest, BadTlsFlagsAreUsageErrors) {
  CommandResult half =
      RunCommand({BinPath("qfarm-coordinator"), "--listen=127.0.0.1:0",
                  "--tls-cert=/nonexistent.pem"});
  EXPECT_EQ(half.exit_code, 2);
  EXPECT_THAT(half.err, HasSubstr("--tls-key"));
  CommandResult missing = RunCommand(
      {BinPath("qfarm"), "--tls-ca=/nonexistent.pem", "status", "1"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("cannot read"));
}

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.path() + "/client") << "client-token\n";
    std::ofstream(dir_.path() + "/worker") << "worker-token\n";
    std::ofstream(dir_.path() + "/wrong") << "not-a-token\n";
    auto farm = LocalFarm::Start(
        {{.id = "w1",
          .extra_flags = {"--token-file=" + dir_.path() + "/worker"}}},
        {"--client-token-file=" + dir_.path() + "/client",
         "--worker-token-file=" + dir_.path() + "/worker"},
        {"--token-file=" + dir_.path() + "/client"});
    ASSERT_TRUE(farm.ok()) << farm.status();
    farm_ = *std::move(farm);
  }
  void TearDown() override {
    if (farm_ != nullptr) {
      EXPECT_TRUE(farm_->Stop().ok());
    }
  }

  CommandResult Qfarm(const std::string& token_file,
                      const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BinPath("qfarm"),
                                     "--coordinator=" + farm_->address()};
    if (!token_file.empty()) {
      argv.push_back("--token-file=" + dir_.path() + "/" + token_file);
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  TempDir dir_;
  std::unique_ptr<LocalFarm> farm_;
};

TEST_F(TokenTest, MissingWrongRightAndWrongRole) {
  CommandResult missing = Qfarm("", {"map", "echo:x"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("UNAUTHENTICATED"));
  CommandResult wrong = Qfarm("wrong", {"map", "echo:x"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("UNAUTHENTICATED"));
  EXPECT_THAT(wrong.err, ::testing::Not(HasSubstr("not-a-token")));
  CommandResult right = Qfarm("client", {"map", "echo:x"});
  EXPECT_EQ(right.exit_code, 0) << right.err;
  CommandResult role = Qfarm("worker", {"workers"});
  EXPECT_EQ(role.exit_code, 1);
  EXPECT_THAT(role.err, HasSubstr("PERMISSION_DENIED"));
}

// Every RPC of both services against every kind of credential, one test per
// cell (`AuthTable/EveryRpc.Refuses/WatchJob_WrongToken`), on one farm with
// both tokens set. Each request is valid and names a job that exists, so a
// method whose token check is missing answers it (OK) instead of refusing.
enum class Credential { kNone, kNotBearer, kWrong, kOtherRole, kRight };

struct Rpc {
  const char* name;
  Role role;  // Whose token the service wants.
  // Makes the call on `channel` with `context` (metadata already added) and
  // returns its final status. `job` is a finished job.
  grpc::Status (*call)(const std::shared_ptr<grpc::Channel>& channel,
                       grpc::ClientContext& context, uint64_t job);
};

v1::Task EchoTask(const std::string& text) {
  v1::Task task;
  task.set_kind("echo");
  task.set_text(text);
  return task;
}

const Rpc kRpcs[] = {
    {"SubmitJob", Role::kClient,
     [](const std::shared_ptr<grpc::Channel>& channel,
        grpc::ClientContext& context, uint64_t) {
       v1::SubmitJobRequest request;
       *request.add_tasks() = EchoTask("submitted");
       v1::SubmitJobResponse response;
       return v1::Farm::NewStub(channel)->SubmitJob(&context, request,
                                                    &response);
     }},
    {"WatchJob", Role::kClient,
     [](const std::shared_ptr<grpc::Channel>& channel,
        grpc::ClientContext& context, uint64_t job) {
       v1::WatchJobRequest request;
       request.set_job_id(job);
       auto reader = v1::Farm::NewStub(channel)->WatchJob(&context, request);
       v1::ResultBatch batch;
       while (reader->Read(&batch)) {
       }
       return reader->Finish();
     }},
    {"GetJob", Role::kClient,
     [](const std::shared_ptr<grpc::Channel>& channel,
        grpc::ClientContext& context, uint64_t job) {
       v1::GetJobRequest request;
       request.set_job_id(job);
       v1::JobInfo info;
       return v1::Farm::NewStub(channel)->GetJob(&context, request, &info);
     }},
    {"CancelJob", Role::kClient,
     [](const std::shared_ptr<grpc::Channel>& channel,
        grpc::ClientContext& context, uint64_t job) {
       v1::CancelJobRequest request;
       request.set_job_id(job);
       v1::CancelJobResponse response;
       return v1::Farm::NewStub(channel)->CancelJob(&context, request,
                                                    &response);
     }},
    {"ListWorkers", Role::kClient,
     [](const std::shared_ptr<grpc::Channel>& channel,
        grpc::ClientContext& context, uint64_t) {
       v1::ListWorkersResponse response;
       return v1::Farm::NewStub(channel)->ListWorkers(&context, {}, &response);
     }},
    {"ListJobs", Role::kClient,
     [](const std::shared_ptr<grpc::Channel>& channel,
        grpc::ClientContext& context, uint64_t) {
       v1::ListJobsResponse response;
       return v1::Farm::NewStub(channel)->ListJobs(&context, {}, &response);
     }},
    {"Session", Role::kClient,
     [](const std::shared_ptr<grpc::Channel>& channel,
        grpc::ClientContext& context, uint64_t) {
       auto stream = v1::Farm::NewStub(channel)->Session(&context);
       v1::SessionRequest request;
       request.set_tag(1);
       *request.add_tasks() = EchoTask("in a session");
       stream->Write(request);  // Fails on a refused call: Finish says why.
       stream->WritesDone();
       v1::SessionResponse response;
       while (stream->Read(&response)) {
       }
       return stream->Finish();
     }},
    {"Connect", Role::kWorker,
     [](const std::shared_ptr<grpc::Channel>& channel,
        grpc::ClientContext& context, uint64_t) {
       auto stream = v1::WorkerLink::NewStub(channel)->Connect(&context);
       v1::WorkerMessage hello;
       hello.mutable_hello()->set_worker_id("auth-probe");
       hello.mutable_hello()->set_slots(1);
       hello.mutable_hello()->add_kinds("echo");
       stream->Write(hello);
       // Accepted: a welcome, then the stream ends when this side does.
       v1::CoordinatorMessage in;
       if (stream->Read(&in) && in.has_welcome()) stream->WritesDone();
       while (stream->Read(&in)) {
       }
       return stream->Finish();
     }},
};

class AuthTable
    : public ::testing::TestWithParam<std::tuple<size_t, Credential>> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    std::ofstream(dir_->path() + "/client") << "client-token\n";
    std::ofstream(dir_->path() + "/worker") << "worker-token\n";
    auto farm = LocalFarm::Start(
        {{.id = "w1",
          .extra_flags = {"--token-file=" + dir_->path() + "/worker"}}},
        {"--client-token-file=" + dir_->path() + "/client",
         "--worker-token-file=" + dir_->path() + "/worker", "--ephemeral"},
        {"--token-file=" + dir_->path() + "/client"});
    ASSERT_TRUE(farm.ok()) << farm.status();
    farm_ = farm->release();
    // A finished job for the calls that name one.
    CommandResult submitted = farm_->Qfarm({"submit", "echo:done"});
    ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
    ASSERT_TRUE(
        absl::SimpleAtoi(absl::StripAsciiWhitespace(submitted.out), &job_))
        << submitted.out;
    CommandResult watched = farm_->Qfarm({"watch", absl::StrCat(job_)});
    ASSERT_EQ(watched.exit_code, 0) << watched.err;
  }
  static void TearDownTestSuite() {
    if (farm_ != nullptr) {
      absl::Status stopped = farm_->Stop();
      EXPECT_TRUE(stopped.ok()) << stopped;
    }
    delete farm_;
    farm_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }

  static TempDir* dir_;
  static LocalFarm* farm_;
  static uint64_t job_;
};
TempDir* AuthTable::dir_ = nullptr;
LocalFarm* AuthTable::farm_ = nullptr;
uint64_t AuthTable::job_ = 0;

TEST_P(AuthTable, EveryRpcChecksTheToken) {
  ASSERT_NE(farm_, nullptr);
  const Rpc& rpc = kRpcs[std::get<0>(GetParam())];
  const Credential credential = std::get<1>(GetParam());
  const std::string own =
      rpc.role == Role::kClient ? "client-token" : "worker-token";
  const std::string other =
      rpc.role == Role::kClient ? "worker-token" : "client-token";
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
  grpc::StatusCode want = grpc::StatusCode::UNAUTHENTICATED;
  switch (credential) {
    case Credential::kNone:
      break;
    case Credential::kNotBearer:
      context.AddMetadata("authorization", own);
      break;
    case Credential::kWrong:
      context.AddMetadata("authorization", "Bearer not-a-token");
      break;
    case Credential::kOtherRole:
      context.AddMetadata("authorization", "Bearer " + other);
      want = grpc::StatusCode::PERMISSION_DENIED;
      break;
    case Credential::kRight:
      context.AddMetadata("authorization", "Bearer " + own);
      want = grpc::StatusCode::OK;
      break;
  }
  const grpc::Status status =
      rpc.call(MakeChannel(farm_->address()), context, job_);
  EXPECT_EQ(status.error_code(), want)
      << rpc.name << ": " << status.error_message() << "\n"
      << farm_->Logs();
  // A refusal never echoes what was sent.
  EXPECT_THAT(status.error_message(), ::testing::Not(HasSubstr("token-")));
  EXPECT_THAT(status.error_message(), ::testing::Not(HasSubstr("not-a-token")));
}

std::string AuthCellName(
    const ::testing::TestParamInfo<std::tuple<size_t, Credential>>& info) {
  const char* credential = "";
  switch (std::get<1>(info.param)) {
    case Credential::kNone:
      credential = "NoToken";
      break;
    case Credential::kNotBearer:
      credential = "NotBearer";
      break;
    case Credential::kWrong:
      credential = "WrongToken";
      break;
    case Credential::kOtherRole:
      credential = "OtherRolesToken";
      break;
    case Credential::kRight:
      credential = "RightToken";
      break;
  }
  return absl::StrCat(kRpcs[std::get<0>(info.param)].name, "_", credential);
}

INSTANTIATE_TEST_SUITE_P(
    EveryRpc, AuthTable,
    ::testing::Combine(::testing::Range<size_t>(0, std::size(kRpcs)),
                       ::testing::Values(Credential::kNone,
                                         Credential::kNotBearer,
                                         Credential::kWrong,
                                         Credential::kOtherRole,
                                         Credential::kRight)),
    AuthCellName);

TEST_F(TokenTest, HealthNeedsNoToken) {
  auto health =
      grpc::health::v1::Health::NewStub(MakeChannel(farm_->address()));
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckResponse response;
  ASSERT_TRUE(health->Check(&context, {}, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace qfarm::testing
