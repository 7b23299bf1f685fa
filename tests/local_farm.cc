#include "tests/local_farm.h"

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace qfarm::testing {

absl::StatusOr<std::unique_ptr<LocalFarm>> LocalFarm::Start(
    const std::vector<WorkerSpec>& workers,
    const std::vector<std::string>& coordinator_flags,
    const std::vector<std::string>& client_flags) {
  std::unique_ptr<LocalFarm> farm(new LocalFarm);
  farm->client_flags_ = client_flags;
  farm->coordinator_flags_ = coordinator_flags;
  bool has_data_dir = false;
  for (const std::string& flag : coordinator_flags) {
    if (absl::StartsWith(flag, "--data-dir") ||
        absl::StartsWith(flag, "--ephemeral")) {
      has_data_dir = true;
    }
  }
  if (!has_data_dir) {
    farm->coordinator_flags_.push_back(
        absl::StrCat("--data-dir=", farm->dir_.path(), "/data"));
  }
  absl::Status started = farm->StartCoordinator("127.0.0.1:0");
  if (!started.ok()) return started;
  for (const WorkerSpec& spec : workers) {
    absl::Status worker = farm->StartWorker(spec);
    if (!worker.ok()) return worker;
  }
  absl::Status ready = farm->WaitForWorkers(workers.size(), absl::Seconds(30));
  if (!ready.ok()) return ready;
  return farm;
}

absl::Status LocalFarm::StartCoordinator(const std::string& listen) {
  std::vector<std::string> argv = {BinPath("qfarm-coordinator"),
                                   "--listen=" + listen};
  argv.insert(argv.end(), coordinator_flags_.begin(), coordinator_flags_.end());
  auto coordinator = Subprocess::Start(
      argv, {.stderr_path = dir_.path() + "/coordinator.log"});
  if (!coordinator.ok()) return coordinator.status();
  coordinator_ = *std::move(coordinator);
  absl::StatusOr<std::string> line = coordinator_->ReadLine(absl::Seconds(20));
  if (!line.ok()) {
    return absl::InternalError(absl::StrCat(
        "coordinator did not start: ", line.status().message(), "\n", Logs()));
  }
  constexpr absl::string_view kPrefix = "qfarm-coordinator listening on ";
  if (!absl::StartsWith(*line, kPrefix)) {
    return absl::InternalError(
        absl::StrCat("unexpected first line: \"", *line, "\""));
  }
  address_ = line->substr(kPrefix.size());
  return absl::OkStatus();
}

absl::Status LocalFarm::RestartCoordinator() {
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait();
  return StartCoordinator(address_);
}

LocalFarm::~LocalFarm() {
  // Subprocess destructors SIGKILL whatever Stop() did not end.
  workers_.clear();
  coordinator_.reset();
}

absl::Status LocalFarm::StartWorker(const WorkerSpec& spec) {
  std::vector<std::string> argv = spec.command;
  if (argv.empty()) argv.push_back(BinPath("qfarm-worker"));
  for (std::string flag :
       {absl::StrCat("--coordinator=", address_),
        absl::StrCat("--mode=", spec.mode),
        absl::StrCat("--slots=", spec.slots), absl::StrCat("--id=", spec.id)}) {
    argv.push_back(std::move(flag));
  }
  argv.insert(argv.end(), spec.extra_flags.begin(), spec.extra_flags.end());
  auto worker = Subprocess::Start(
      argv, {.stderr_path = absl::StrCat(dir_.path(), "/", spec.id, ".log")});
  if (!worker.ok()) return worker.status();
  workers_[spec.id] = *std::move(worker);
  return absl::OkStatus();
}

absl::Status LocalFarm::WaitForWorkers(size_t count, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(5);
  while (true) {
    CommandResult listed = Qfarm({"workers"});
    // A header line, then one line per worker.
    const size_t lines = listed.exit_code == 0
                             ? static_cast<size_t>(std::count(
                                   listed.out.begin(), listed.out.end(), '\n'))
                             : 0;
    if (lines > 0 && lines - 1 >= count) return absl::OkStatus();
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("coordinator lists ", lines > 0 ? lines - 1 : 0, " of ",
                       count, " workers (qfarm workers exit ", listed.exit_code,
                       ")\n", listed.out, listed.err, Logs()));
    }
    absl::SleepFor(pause);  // Polling a remote condition, with backoff.
    pause = std::min(pause * 2, absl::Milliseconds(100));
  }
}

Subprocess* LocalFarm::worker(const std::string& id) {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : it->second.get();
}

std::vector<std::string> LocalFarm::worker_ids() const {
  std::vector<std::string> ids;
  for (const auto& [id, worker] : workers_) ids.push_back(id);
  return ids;
}

void LocalFarm::KillWorker(const std::string& id) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  it->second->Signal(SIGKILL);
  it->second->Wait();
  workers_.erase(it);
}

absl::Status LocalFarm::Stop(absl::Duration timeout) {
  std::string problems;
  for (auto& [id, worker] : workers_) worker->Signal(SIGTERM);
  for (auto& [id, worker] : workers_) {
    absl::StatusOr<int> code = worker->WaitFor(timeout);
    if (!code.ok() || *code != 0) {
      absl::StrAppend(&problems, "worker ", id, " exit: ",
                      code.ok() ? absl::StrCat(*code)
                                : std::string(code.status().message()),
                      "\n");
    }
  }
  coordinator_->Signal(SIGTERM);
  absl::StatusOr<int> code = coordinator_->WaitFor(timeout);
  if (!code.ok() || *code != 0) {
    absl::StrAppend(
        &problems, "coordinator exit: ",
        code.ok() ? absl::StrCat(*code) : std::string(code.status().message()),
        "\n");
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(problems, Logs()));
}

CommandResult LocalFarm::Qfarm(const std::vector<std::string>& args,
                               const std::string& stdin_data) const {
  std::vector<std::string> argv = {BinPath("qfarm"),
                                   absl::StrCat("--coordinator=", address_)};
  argv.insert(argv.end(), client_flags_.begin(), client_flags_.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, stdin_data);
}

std::string LocalFarm::Logs() const {
  std::string out;
  std::vector<std::string> names = {"coordinator"};
  for (const auto& [id, worker] : workers_) names.push_back(id);
  for (const std::string& name : names) {
    std::ifstream file(absl::StrCat(dir_.path(), "/", name, ".log"));
    std::stringstream buffer;
    buffer << file.rdbuf();
    absl::StrAppend(&out, "--- ", name, ".log\n", buffer.str());
  }
  return out;
}

absl::StatusOr<JsonObject> ParseFlatJson(const std::string& line) {
  JsonObject object;
  size_t i = 0;
  auto fail = [&line](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad JSON (", why, "): ", line));
  };
  auto parse_string = [&](std::string* out) -> bool {
    if (i >= line.size() || line[i] != '"') return false;
    ++i;
    while (i < line.size() && line[i] != '"') {
      if (line[i] == '\\') {
        if (++i >= line.size()) return false;
        switch (line[i]) {
          case 'n':
            out->push_back('\n');
            break;
          case 't':
            out->push_back('\t');
            break;
          case 'r':
            out->push_back('\r');
            break;
          case 'u':
            out->append(line, i - 1, 6);  // Kept escaped.
            i += 4;
            break;
          default:
            out->push_back(line[i]);
        }
        ++i;
      } else {
        out->push_back(line[i++]);
      }
    }
    if (i >= line.size()) return false;
    ++i;
    return true;
  };
  if (line.empty() || line[i++] != '{') return fail("no {");
  while (i < line.size() && line[i] != '}') {
    std::string key;
    if (!parse_string(&key)) return fail("key");
    if (i >= line.size() || line[i++] != ':') return fail("no :");
    std::string value;
    if (i < line.size() && line[i] == '"') {
      if (!parse_string(&value)) return fail("string value");
    } else {
      while (i < line.size() && line[i] != ',' && line[i] != '}') {
        value.push_back(line[i++]);
      }
    }
    object[key] = value;
    if (i < line.size() && line[i] == ',') ++i;
  }
  if (i >= line.size()) return fail("no }");
  return object;
}

absl::StatusOr<std::vector<JsonObject>> ParseJsonLines(
    const std::string& text) {
  std::vector<JsonObject> objects;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    absl::StatusOr<JsonObject> object = ParseFlatJson(std::string(line));
    if (!object.ok()) return object.status();
    objects.push_back(*std::move(object));
  }
  return objects;
}

}  // namespace qfarm::testing
