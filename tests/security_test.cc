// TLS, mutual TLS and tokens through the real binaries. Certificates are
// made at test time with openssl; no private key is committed.
#include <fstream>

#include "absl/strings/str_cat.h"
#include "client/farm_client.h"
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
  }

  std::string path(const std::string& name) const {
    return absl::StrCat(dir_.path(), "/", name);
  }
  bool ok() const { return ok_; }

 private:
  void Issue(const std::string& name, const std::string& subject,
             const std::string& ext) {
    const std::string d = dir_.path();
    Run({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
         "-keyout", d + "/" + name + ".key", "-out", d + "/" + name + ".csr"});
    std::ofstream(d + "/" + name + ".ext") << ext << "\n";
    Run({"openssl", "x509", "-req", "-in", d + "/" + name + ".csr", "-CA",
         d + "/ca.pem", "-CAkey", d + "/ca.key", "-CAcreateserial", "-days",
         "1", "-extfile", d + "/" + name + ".ext", "-out",
         d + "/" + name + ".pem"});
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

TEST_F(TokenTest, ClientTokenOnTheWorkerServiceIsDenied) {
  auto stub = v1::WorkerLink::NewStub(MakeChannel(farm_->address()));
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer client-token");
  auto stream = stub->Connect(&context);
  v1::WorkerMessage hello;
  hello.mutable_hello()->set_slots(1);
  hello.mutable_hello()->add_kinds("echo");
  stream->Write(hello);
  v1::CoordinatorMessage in;
  EXPECT_FALSE(stream->Read(&in));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

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
