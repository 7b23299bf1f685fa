#include "coordinator/coordinator_server.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>
#include <malloc.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_options.h"
#include "common/logging.h"
#include "coordinator/coordinator_metrics.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace qfarm::coordinator {
namespace {

// Below the 1 s idle deadline of gRPC's callback threads, with room for a
// loaded machine (see KeepCallbackThreadsAwake()).
constexpr absl::Duration kCallbackKeepAwake = absl::Milliseconds(250);

// The stub KeepCallbackThreadsAwake() calls, on a lame channel (null
// credentials): its calls fail at once, with no transport and no server
// behind them. One for the process, never destroyed: gRPC's callback
// completion queue is process-wide and counts the channels and servers
// that use it; when the count falls to zero it is torn down, and gRPC
// 1.51 races that teardown against the next user (a double free in
// grpc_cq_internal_unref under ASan when coordinators start and stop in a
// loop). This channel's reference keeps the queue up for the process's
// life.
grpc::health::v1::Health::Stub& KeepAwakeStub() {
  static grpc::health::v1::Health::Stub* const stub =
      grpc::health::v1::Health::NewStub(
          grpc::CreateChannel("keep-awake.invalid", nullptr))
          .release();
  return *stub;
}

}  // namespace

CoordinatorServer::CoordinatorServer(const CoordinatorOptions& options)
    : clock_(options.clock ? options.clock : Clock::Real()),
      auth_(options.client_token, options.worker_token),
      scheduler_(clock_, options.scheduler),
      router_(&scheduler_),
      farm_service_(&scheduler_, &router_, &auth_),
      worker_link_service_(&scheduler_, &router_, &auth_),
      heartbeat_timeout_(options.scheduler.heartbeat_timeout),
      on_fatal_(options.on_fatal) {}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    const CoordinatorOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  std::unique_ptr<CoordinatorServer> server(new CoordinatorServer(options));
  if (!options.data_dir.empty()) {
    absl::StatusOr<std::unique_ptr<Journal>> journal =
        Journal::Open(options.data_dir, options.journal);
    if (!journal.ok()) return journal.status();
    absl::StatusOr<RecoveredState> state = (*journal)->Recover();
    if (!state.ok()) return state.status();
    server->recovered_jobs_ = state->jobs.size();
    absl::Status restored = server->scheduler_.Restore(*std::move(state));
    if (!restored.ok()) return restored;
    server->journal_ = *std::move(journal);
    Router* router = &server->router_;
    server->scheduler_.SetJournal(server->journal_.get(),
                                  [router](const std::vector<JobId>& jobs) {
                                    router->WakeWatchers(jobs);
                                  });
    server->farm_service_.SetJournal(server->journal_.get());
  }
  server->farm_service_.SetLimits(options.limits);
  if (!options.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsServer>> metrics =
        MetricsServer::Start(options.metrics_listen,
                             std::make_shared<CoordinatorMetrics>(
                                 &server->scheduler_, server->journal_.get(),
                                 &server->farm_service_));
    if (!metrics.ok()) return metrics.status();
    server->metrics_server_ = *std::move(metrics);
  }
  server->worker_link_service_.SetHeartbeatInterval(
      std::max(absl::Milliseconds(100), server->heartbeat_timeout_ / 4));
  // grpc.health.v1, served by gRPC itself: SERVING while up, NOT_SERVING
  // from the start of Shutdown() (Kubernetes probes ask the empty name).
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  ConfigureServerBuilder(builder);
  builder.AddListeningPort(options.listen, *credentials, &server->port_);
  builder.RegisterService(&server->farm_service_);
  builder.RegisterService(&server->worker_link_service_);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen));
  }
  const size_t colon = options.listen.rfind(':');
  server->address_ =
      absl::StrCat(options.listen.substr(0, colon), ":", server->port_);
  server->ticker_ = std::thread([s = server.get()] { s->TickLoop(); });
  if (!options.health_listen.empty()) {
    CoordinatorServer* s = server.get();
    absl::StatusOr<std::unique_ptr<HealthServer>> health =
        HealthServer::Start(options.health_listen, [s]() -> absl::Status {
          absl::MutexLock lock(&s->shutdown_mu_);
          return s->shut_down_
                     ? absl::UnavailableError("coordinator shutting down")
                     : absl::OkStatus();
        });
    if (!health.ok()) {
      return absl::Status(
          health.status().code(),
          absl::StrCat("--health-listen: ", health.status().message()));
    }
    server->health_server_ = *std::move(health);
  }
  return server;
}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

void CoordinatorServer::Shutdown() {
  {
    absl::MutexLock lock(&shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  if (server_ != nullptr) {
    server_->GetHealthCheckService()->SetServingStatus(false);
  }
  if (ticker_.joinable()) ticker_.join();
  router_.CloseAll(absl::UnavailableError("coordinator shutting down"));
  if (server_ != nullptr) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    server_->Wait();
  }
  // NOT_SERVING until the main port is gone; then closed.
  if (health_server_ != nullptr) health_server_->Shutdown();
  if (journal_ != nullptr) {
    absl::Status closed = journal_->Close();
    if (!closed.ok()) {
      QFARM_LOG(ERROR) << "journal: " << closed.message();
    }
  }
}

void CoordinatorServer::TickLoop() {
  const absl::Duration expiry_period =
      heartbeat_timeout_ == absl::InfiniteDuration()
          ? absl::Seconds(1)
          : std::max(absl::Milliseconds(20), heartbeat_timeout_ / 4);
  absl::Time next_expiry = clock_->Now() + expiry_period;
  absl::Time next_keep_awake = clock_->Now();
  // Retention (SchedulerOptions::retain_finished) is applied this often.
  constexpr absl::Duration kReleasePeriod = absl::Seconds(1);
  absl::Time next_release = clock_->Now() + kReleasePeriod;
  constexpr absl::Duration kTrimPeriod = absl::Seconds(5);
  absl::Time next_trim = clock_->Now();
  bool trim_due = false;
  while (true) {
    const absl::Time wake = std::min(
        {next_expiry, next_keep_awake, next_release, scheduler_.NextWakeup()});
    {
      absl::MutexLock lock(&shutdown_mu_);
      clock_->AwaitWithDeadline(&shutdown_mu_, absl::Condition(&shut_down_),
                                wake);
      if (shut_down_) return;
    }
    const absl::Time now = clock_->Now();
    if (now >= next_keep_awake) {
      next_keep_awake = now + kCallbackKeepAwake;
      KeepCallbackThreadsAwake();
    }
    if (now >= next_expiry) {
      next_expiry = now + expiry_period;
      Expiry expiry = scheduler_.ExpireSilentWorkers();
      for (WorkerKey key : expiry.workers) {
        router_.CloseWorker(
            key, absl::UnavailableError("no heartbeat: worker declared dead"));
      }
      router_.WakeWatchers(expiry.jobs);
    }
    if (now >= next_release) {
      next_release = now + kReleasePeriod;
      if (!scheduler_.ReleaseFinished().empty()) trim_due = true;
      // Finished jobs nobody reads keep their results on disk only.
      if (scheduler_.StoreFinished() > 0) trim_due = true;
      // glibc keeps what released jobs freed in its arenas (one per
      // thread that allocated it); give it back to the system, at most
      // every kTrimPeriod.
      if (trim_due && now >= next_trim) {
        malloc_trim(0);
        trim_due = false;
        next_trim = now + kTrimPeriod;
      }
    }
    router_.Pump();
    if (journal_ != nullptr) {
      absl::Status status = journal_->status();
      if (!status.ok()) {
        bool report = false;
        {
          absl::MutexLock lock(&shutdown_mu_);
          report = !fatal_reported_;
          fatal_reported_ = true;
        }
        if (report) {
          QFARM_LOG(ERROR) << "journal failed: " << status.message();
          if (on_fatal_) on_fatal_(status);
        }
      }
    }
  }
}

void CoordinatorServer::KeepCallbackThreadsAwake() {
  {
    absl::MutexLock lock(&keep_awake_->mu);
    if (keep_awake_->in_flight) return;
    keep_awake_->in_flight = true;
  }
  struct Call {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
  };
  auto call = std::make_shared<Call>();
  // The callback owns the call and the flag: it may run after this
  // server is gone.
  KeepAwakeStub().async()->Check(
      &call->context, &call->request, &call->response,
      [call, state = keep_awake_](const grpc::Status&) {
        absl::MutexLock lock(&state->mu);
        state->in_flight = false;
      });
}

}  // namespace qfarm::coordinator
