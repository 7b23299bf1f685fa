// The Kubernetes manifests are real: each overlay of deploy/k8s is rendered
// with `kubectl kustomize`, and the real binaries are started with exactly
// the rendered containers' command, args and env (only the listen
// addresses and the coordinator's address are rewritten, to 127.0.0.1). The
// seed Job runs through them, the coordinator answers the probes' health
// check (also with TLS on), a stopped worker fails its liveness probe, and
// the worker drains inside the pod's terminationGracePeriodSeconds. Other
// tests check what schema validation (deploy/validate.sh) cannot: that the
// pieces name each other correctly, and that every pod is locked down.
//
// Without kubectl ($KUBECTL names another one) the overlays cannot be
// rendered: the base's files are read as written instead (its resources,
// and the ConfigMap its generator makes), once, under the thread overlay's
// name, and the other overlays are skipped.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/farm_client.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace qfarm::testing {
namespace {

// ---------------------------------------------------------------------------
// A YAML node of the block subset `kubectl kustomize` prints: mappings,
// sequences (also "- key: value" items and sequences at their key's
// indentation), plain, quoted and block scalars, "{}" and "[]".

struct Yaml {
  enum class Kind { kNull, kScalar, kMap, kSeq };
  Kind kind = Kind::kNull;
  std::string scalar;
  std::vector<std::pair<std::string, Yaml>> map;
  std::vector<Yaml> seq;

  static const Yaml& Null() {
    static const Yaml* const kNull = new Yaml;
    return *kNull;
  }
  // The value of `key`, or a null node.
  const Yaml& operator[](absl::string_view key) const {
    for (const auto& [k, v] : map) {
      if (k == key) return v;
    }
    return Null();
  }
  // Item `i` of a sequence, or a null node.
  const Yaml& At(size_t i) const { return i < seq.size() ? seq[i] : Null(); }
  bool IsNull() const { return kind == Kind::kNull; }
  // A scalar's text; "" for anything else.
  const std::string& Str() const {
    static const std::string* const kEmpty = new std::string;
    return kind == Kind::kScalar ? scalar : *kEmpty;
  }
  // A sequence of scalars.
  std::vector<std::string> Strings() const {
    std::vector<std::string> out;
    for (const Yaml& item : seq) out.push_back(item.Str());
    return out;
  }
};

class YamlParser {
 public:
  // Parses a stream of documents separated by "---" lines; empty documents
  // are dropped.
  static absl::StatusOr<std::vector<Yaml>> ParseStream(absl::string_view text) {
    std::vector<Yaml> docs;
    std::vector<std::string> current;
    auto flush = [&]() -> absl::Status {
      YamlParser parser(current);
      absl::StatusOr<Yaml> doc = parser.ParseDocument();
      if (!doc.ok()) return doc.status();
      if (!doc->IsNull()) docs.push_back(*std::move(doc));
      current.clear();
      return absl::OkStatus();
    };
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (line == "---" || absl::StartsWith(line, "--- ") || line == "...") {
        if (absl::Status s = flush(); !s.ok()) return s;
        continue;
      }
      current.emplace_back(line);
    }
    if (absl::Status s = flush(); !s.ok()) return s;
    return docs;
  }

 private:
  struct Line {
    int indent = 0;
    std::string text;  // Without the indentation.
    std::string raw;
    bool blank = false;  // Empty or a comment.
  };

  explicit YamlParser(const std::vector<std::string>& raw) {
    for (const std::string& r : raw) {
      Line line;
      line.raw = r;
      size_t n = r.find_first_not_of(' ');
      if (n == std::string::npos) {
        line.blank = true;
      } else {
        line.indent = static_cast<int>(n);
        line.text = r.substr(n);
        line.blank = line.text[0] == '#';
      }
      lines_.push_back(std::move(line));
    }
  }

  absl::StatusOr<Yaml> ParseDocument() {
    absl::StatusOr<Yaml> root = ParseBlock(0);
    if (!root.ok()) return root.status();
    if (!AtEnd()) return Error("unexpected line");
    return root;
  }

  bool AtEnd() {
    while (i_ < lines_.size() && lines_[i_].blank) ++i_;
    return i_ >= lines_.size();
  }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(
        "YAML: ", what, " at \"",
        i_ < lines_.size() ? lines_[i_].raw : std::string("<end>"), "\""));
  }

  static bool IsSeqItem(absl::string_view text) {
    return text == "-" || absl::StartsWith(text, "- ");
  }

  // Splits "key: rest" / "key:"; false if `text` is not a mapping entry.
  static bool SplitKey(absl::string_view text, std::string* key,
                       std::string* rest) {
    size_t colon;
    if (!text.empty() && (text[0] == '"' || text[0] == '\'')) {
      size_t end = ParseQuoted(text, key);
      if (end == std::string::npos || end >= text.size() || text[end] != ':') {
        return false;
      }
      colon = end;
    } else {
      colon = 0;
      while (true) {
        colon = text.find(':', colon);
        if (colon == std::string::npos) return false;
        if (colon + 1 == text.size() || text[colon + 1] == ' ') break;
        ++colon;
      }
      *key = std::string(text.substr(0, colon));
    }
    if (colon + 1 < text.size() && text[colon + 1] != ' ') return false;
    *rest = std::string(absl::StripAsciiWhitespace(
        text.substr(std::min(colon + 1, text.size()))));
    return true;
  }

  // Parses a quoted scalar at the start of `text` into `out`; returns the
  // index after the closing quote, or npos.
  static size_t ParseQuoted(absl::string_view text, std::string* out) {
    out->clear();
    const char quote = text[0];
    for (size_t i = 1; i < text.size(); ++i) {
      const char c = text[i];
      if (quote == '\'' && c == '\'') {
        if (i + 1 < text.size() && text[i + 1] == '\'') {
          out->push_back('\'');
          ++i;
          continue;
        }
        return i + 1;
      }
      if (quote == '"' && c == '"') return i + 1;
      if (quote == '"' && c == '\\' && i + 1 < text.size()) {
        const char e = text[++i];
        out->push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
        continue;
      }
      out->push_back(c);
    }
    return std::string::npos;
  }

  absl::StatusOr<Yaml> Scalar(std::string text) const {
    Yaml node;
    if (text.empty() || text == "~" || text == "null") return node;
    if (text == "{}") {
      node.kind = Yaml::Kind::kMap;
      return node;
    }
    if (text == "[]") {
      node.kind = Yaml::Kind::kSeq;
      return node;
    }
    node.kind = Yaml::Kind::kScalar;
    if (text[0] == '"' || text[0] == '\'') {
      if (ParseQuoted(text, &node.scalar) == std::string::npos) {
        return Error("unterminated quoted scalar");
      }
      return node;
    }
    if (text[0] == '{' || text[0] == '[' || text[0] == '&' || text[0] == '*') {
      return Error("flow collections, anchors and aliases are not supported");
    }
    if (size_t comment = text.find(" #"); comment != std::string::npos) {
      text.resize(comment);
    }
    node.scalar = std::string(absl::StripTrailingAsciiWhitespace(text));
    return node;
  }

  // A scalar whose text may continue on deeper-indented lines.
  absl::StatusOr<Yaml> MultiLineScalar(std::string text, int indent) {
    while (!AtEnd() && lines_[i_].indent > indent) {
      absl::StrAppend(&text, " ", lines_[i_].text);
      ++i_;
    }
    return Scalar(std::move(text));
  }

  // "|", "|-", ">" ... : the lines indented deeper than `indent`.
  Yaml BlockScalar(absl::string_view header, int indent) {
    std::vector<std::string> body;
    int block_indent = -1;
    while (i_ < lines_.size()) {
      const Line& line = lines_[i_];
      const bool empty = line.raw.find_first_not_of(' ') == std::string::npos;
      if (!empty && line.indent <= indent) break;
      if (!empty && block_indent < 0) block_indent = line.indent;
      body.push_back(empty ? ""
                           : line.raw.substr(static_cast<size_t>(
                                 std::max(block_indent, 0))));
      ++i_;
    }
    while (!body.empty() && body.back().empty()) body.pop_back();
    Yaml node;
    node.kind = Yaml::Kind::kScalar;
    node.scalar = absl::StrJoin(body, header[0] == '>' ? " " : "\n");
    if (!absl::StrContains(header, '-') && !body.empty()) {
      node.scalar.push_back('\n');
    }
    return node;
  }

  absl::StatusOr<Yaml> ParseBlock(int min_indent) {
    if (AtEnd() || lines_[i_].indent < min_indent) return Yaml();
    const int indent = lines_[i_].indent;
    if (IsSeqItem(lines_[i_].text)) return ParseSeq(indent);
    return ParseMap(indent);
  }

  // The value after "key:" (or "- ") whose entry sits at `indent`.
  absl::StatusOr<Yaml> ParseValue(const std::string& rest, int indent) {
    if (!rest.empty() && (rest[0] == '|' || rest[0] == '>')) {
      return BlockScalar(rest, indent);
    }
    if (!rest.empty()) return MultiLineScalar(rest, indent);
    if (AtEnd()) return Yaml();
    const Line& next = lines_[i_];
    if (next.indent > indent) return ParseBlock(next.indent);
    if (next.indent == indent && IsSeqItem(next.text)) return ParseSeq(indent);
    return Yaml();
  }

  absl::StatusOr<Yaml> ParseMap(int indent) {
    Yaml node;
    node.kind = Yaml::Kind::kMap;
    while (!AtEnd() && lines_[i_].indent == indent &&
           !IsSeqItem(lines_[i_].text)) {
      std::string key, rest;
      if (!SplitKey(lines_[i_].text, &key, &rest)) {
        return Error("expected \"key: value\"");
      }
      ++i_;
      absl::StatusOr<Yaml> value = ParseValue(rest, indent);
      if (!value.ok()) return value.status();
      node.map.emplace_back(std::move(key), *std::move(value));
    }
    if (!AtEnd() && lines_[i_].indent > indent) return Error("bad indentation");
    return node;
  }

  absl::StatusOr<Yaml> ParseSeq(int indent) {
    Yaml node;
    node.kind = Yaml::Kind::kSeq;
    while (!AtEnd() && lines_[i_].indent == indent &&
           IsSeqItem(lines_[i_].text)) {
      Line& line = lines_[i_];
      const size_t skip = line.text.find_first_not_of(' ', 1);
      const std::string content =
          skip == std::string::npos ? "" : line.text.substr(skip);
      const int content_indent = indent + static_cast<int>(skip);
      std::string key, rest;
      absl::StatusOr<Yaml> item;
      if (content.empty()) {
        ++i_;
        item = ParseValue("", indent);
      } else if (IsSeqItem(content) || SplitKey(content, &key, &rest)) {
        // "- key: value" opens a mapping (or "- - x" a sequence) whose
        // entries sit where the content starts.
        line.indent = content_indent;
        line.text = content;
        item = ParseBlock(content_indent);
      } else {
        ++i_;
        item = ParseValue(content, indent);
      }
      if (!item.ok()) return item.status();
      node.seq.push_back(*std::move(item));
    }
    return node;
  }

  std::vector<Line> lines_;
  size_t i_ = 0;
};

TEST(YamlParserTest, ReadsWhatKustomizePrints) {
  auto docs = YamlParser::ParseStream(R"(apiVersion: v1
kind: Pod
metadata:
  labels:
    app.kubernetes.io/name: qfarm # a comment
  name: "quoted: name"
spec:
  containers:
  - args:
    - --coordinator=qfarm-coordinator:50051
    - '--id=$(POD_NAME)'
    env:
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    name: worker
    ports: []
  script: |-
    line one
    line two
---
kind: Empty
data: {}
)");
  ASSERT_TRUE(docs.ok()) << docs.status();
  ASSERT_EQ(docs->size(), 2u);
  const Yaml& pod = (*docs)[0];
  EXPECT_EQ(pod["metadata"]["labels"]["app.kubernetes.io/name"].Str(), "qfarm");
  EXPECT_EQ(pod["metadata"]["name"].Str(), "quoted: name");
  const Yaml& c = pod["spec"]["containers"].At(0);
  EXPECT_EQ(c["args"].Strings(),
            (std::vector<std::string>{"--coordinator=qfarm-coordinator:50051",
                                      "--id=$(POD_NAME)"}));
  EXPECT_EQ(c["env"].At(0)["valueFrom"]["fieldRef"]["fieldPath"].Str(),
            "metadata.name");
  EXPECT_EQ(c["name"].Str(), "worker");
  EXPECT_EQ(c["ports"].kind, Yaml::Kind::kSeq);
  EXPECT_EQ(pod["spec"]["script"].Str(), "line one\nline two");
  EXPECT_EQ((*docs)[1]["data"].kind, Yaml::Kind::kMap);
  EXPECT_TRUE(pod["missing"]["deeper"].IsNull());
}

// ---------------------------------------------------------------------------
// From a rendered container to a process.

// The kubectl to render with: $KUBECTL, else `kubectl` on PATH; "" if none.
std::string FindKubectl() {
  const char* env = std::getenv("KUBECTL");
  std::string name = env != nullptr && *env != '\0' ? env : "kubectl";
  if (absl::StrContains(name, '/')) {
    return access(name.c_str(), X_OK) == 0 ? name : "";
  }
  const char* path = std::getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path != nullptr ? path : "", ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Kubernetes' $(VAR) expansion in command, args and env values: a defined
// variable is replaced, an undefined one left as written, "$$" is "$".
std::string Expand(absl::string_view in,
                   const absl::flat_hash_map<std::string, std::string>& vars) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '$' && i + 1 < in.size() && in[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    if (in[i] == '$' && i + 1 < in.size() && in[i + 1] == '(') {
      const size_t close = in.find(')', i + 2);
      if (close != absl::string_view::npos) {
        const std::string name(in.substr(i + 2, close - i - 2));
        auto it = vars.find(name);
        out.append(it != vars.end() ? it->second
                                    : std::string(in.substr(i, close - i + 1)));
        i = close;
        continue;
      }
    }
    out.push_back(in[i]);
  }
  return out;
}

TEST(ExpandTest, FollowsKubernetesRules) {
  absl::flat_hash_map<std::string, std::string> vars = {{"POD_NAME", "w-1"}};
  EXPECT_EQ(Expand("--id=$(POD_NAME)", vars), "--id=w-1");
  EXPECT_EQ(Expand("$(UNSET)-$$(POD_NAME)", vars), "$(UNSET)-$(POD_NAME)");
}

using Docs = std::vector<Yaml>;

const Yaml& Find(const Docs& docs, absl::string_view kind,
                 absl::string_view name) {
  for (const Yaml& doc : docs) {
    if (doc["kind"].Str() == kind && doc["metadata"]["name"].Str() == name) {
      return doc;
    }
  }
  return Yaml::Null();
}

const Yaml& PodSpec(const Yaml& workload) {
  return workload["spec"]["template"]["spec"];
}
const Yaml& PodLabels(const Yaml& workload) {
  return workload["spec"]["template"]["metadata"]["labels"];
}
const Yaml& MainContainer(const Yaml& workload) {
  return PodSpec(workload)["containers"].At(0);
}

// Whether every label of `selector` (matchLabels) is on `labels`.
bool Selects(const Yaml& selector, const Yaml& labels) {
  if (selector.map.empty()) return false;
  for (const auto& [key, value] : selector.map) {
    if (labels[key].Str() != value.Str()) return false;
  }
  return true;
}

// A container as the kubelet would start it.
struct Process {
  std::vector<std::string> argv;  // command, then args
  std::vector<std::string> env;   // NAME=VALUE, envFrom then env
};

absl::StatusOr<Process> ContainerProcess(const Docs& docs, const Yaml& workload,
                                         const std::string& pod_name) {
  const Yaml& container = MainContainer(workload);
  if (container.IsNull()) return absl::NotFoundError("no container");
  absl::flat_hash_map<std::string, std::string> vars;
  std::vector<std::string> order;
  auto set = [&](const std::string& name, std::string value) {
    if (!vars.contains(name)) order.push_back(name);
    vars[name] = std::move(value);
  };
  auto config_map = [&](const std::string& name) -> const Yaml& {
    return Find(docs, "ConfigMap", name);
  };
  for (const Yaml& from : container["envFrom"].seq) {
    const Yaml& ref = from["configMapRef"];
    if (ref.IsNull()) {
      return absl::UnimplementedError("envFrom other than configMapRef");
    }
    const Yaml& cm = config_map(ref["name"].Str());
    if (cm.IsNull() && ref["optional"].Str() != "true") {
      return absl::NotFoundError(
          absl::StrCat("envFrom: no ConfigMap ", ref["name"].Str()));
    }
    for (const auto& [key, value] : cm["data"].map) {
      set(from["prefix"].Str() + key, value.Str());
    }
  }
  for (const Yaml& e : container["env"].seq) {
    const std::string name = e["name"].Str();
    const Yaml& from = e["valueFrom"];
    if (from.IsNull()) {
      set(name, Expand(e["value"].Str(), vars));
    } else if (!from["fieldRef"].IsNull()) {
      const std::string field = from["fieldRef"]["fieldPath"].Str();
      if (field == "metadata.name") {
        set(name, pod_name);
      } else if (field == "metadata.namespace") {
        set(name, workload["metadata"]["namespace"].Str());
      } else {
        return absl::UnimplementedError(absl::StrCat("fieldRef ", field));
      }
    } else if (!from["configMapKeyRef"].IsNull()) {
      const Yaml& ref = from["configMapKeyRef"];
      const Yaml& value =
          config_map(ref["name"].Str())["data"][ref["key"].Str()];
      if (value.IsNull()) {
        return absl::NotFoundError(absl::StrCat(
            "env ", name, ": no ", ref["name"].Str(), "/", ref["key"].Str()));
      }
      set(name, value.Str());
    } else {
      return absl::UnimplementedError(
          absl::StrCat("env ", name, ": valueFrom"));
    }
  }
  Process process;
  for (const std::string& s : container["command"].Strings()) {
    process.argv.push_back(Expand(s, vars));
  }
  for (const std::string& s : container["args"].Strings()) {
    process.argv.push_back(Expand(s, vars));
  }
  for (const std::string& name : order) {
    process.env.push_back(absl::StrCat(name, "=", vars[name]));
  }
  return process;
}

// The value of --NAME=VALUE in `argv`, or "" when absent.
std::string FlagValue(const std::vector<std::string>& argv,
                      absl::string_view name) {
  const std::string prefix = absl::StrCat("--", name, "=");
  for (const std::string& arg : argv) {
    if (absl::StartsWith(arg, prefix)) return arg.substr(prefix.size());
  }
  return "";
}

// Replaces the value of --NAME=... in `argv` (or of NAME=... in an env
// list with `prefix` ""); returns how many were replaced.
int Rewrite(std::vector<std::string>* list, const std::string& prefix,
            const std::string& value) {
  int n = 0;
  for (std::string& item : *list) {
    if (absl::StartsWith(item, prefix)) {
      item = prefix + value;
      ++n;
    }
  }
  return n;
}

// The port of HOST:PORT.
std::string PortOf(absl::string_view address) {
  const size_t colon = address.rfind(':');
  return colon == absl::string_view::npos
             ? ""
             : std::string(address.substr(colon + 1));
}

absl::StatusOr<int64_t> Seconds(const Yaml& node) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(node.Str(), &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a whole number: \"", node.Str(), "\""));
  }
  return v;
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream buffer;
  buffer << file.rdbuf();
  return buffer.str();
}

// Health/Check in plaintext, as the kubelet's grpc probe asks it, with the
// probe's timeout.
absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus>
CheckHealth(const std::string& address, const std::string& service,
            absl::Duration timeout = absl::Seconds(5)) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("Health/Check: ", static_cast<int>(status.error_code()),
                     " ", status.error_message()));
  }
  return response.status();
}

Yaml ScalarNode(std::string text) {
  Yaml node;
  node.kind = Yaml::Kind::kScalar;
  node.scalar = std::move(text);
  return node;
}

Yaml MapNode(std::vector<std::pair<std::string, Yaml>> entries) {
  Yaml node;
  node.kind = Yaml::Kind::kMap;
  node.map = std::move(entries);
  return node;
}

// Without kubectl: the resources of the kustomization in `dir` as written,
// and the ConfigMaps its configMapGenerator makes from literals; nothing
// else of kustomize (no name hashes, namespace or labels, no patches).
absl::StatusOr<Docs> ReadKustomizationAsWritten(const std::string& dir) {
  auto kustomization =
      YamlParser::ParseStream(ReadFile(dir + "/kustomization.yaml"));
  if (!kustomization.ok()) return kustomization.status();
  if (kustomization->empty()) {
    return absl::NotFoundError(absl::StrCat("no ", dir, "/kustomization.yaml"));
  }
  const Yaml& k = (*kustomization)[0];
  Docs docs;
  for (const std::string& file : k["resources"].Strings()) {
    auto parsed = YamlParser::ParseStream(ReadFile(dir + "/" + file));
    if (!parsed.ok()) {
      return absl::Status(parsed.status().code(),
                          absl::StrCat(file, ": ", parsed.status().message()));
    }
    for (Yaml& doc : *parsed) docs.push_back(std::move(doc));
  }
  for (const Yaml& generator : k["configMapGenerator"].seq) {
    Yaml data = MapNode({});
    for (const std::string& literal : generator["literals"].Strings()) {
      const size_t eq = literal.find('=');
      if (eq == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("configMapGenerator literal \"", literal, "\""));
      }
      data.map.emplace_back(literal.substr(0, eq),
                            ScalarNode(literal.substr(eq + 1)));
    }
    docs.push_back(
        MapNode({{"kind", ScalarNode("ConfigMap")},
                 {"metadata", MapNode({{"name", generator["name"]}})},
                 {"data", std::move(data)}}));
  }
  return docs;
}

// The address on the first line of `process`'s stdout that starts with
// `prefix`; an error when none comes within 20 s.
absl::StatusOr<std::string> ReadAddress(Subprocess& process,
                                        absl::string_view prefix) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (true) {
    absl::StatusOr<std::string> line = process.ReadLine(deadline - absl::Now());
    if (!line.ok()) {
      return absl::Status(
          line.status().code(),
          absl::StrCat("no \"", prefix, "\" line: ", line.status().message()));
    }
    if (absl::StartsWith(*line, prefix)) return line->substr(prefix.size());
  }
}

// A probe's timeoutSeconds.
absl::StatusOr<absl::Duration> ProbeTimeout(const Yaml& probe) {
  if (probe["timeoutSeconds"].IsNull())
    return absl::Seconds(1);  // The default.
  absl::StatusOr<int64_t> seconds = Seconds(probe["timeoutSeconds"]);
  if (!seconds.ok()) return seconds.status();
  return absl::Seconds(*seconds);
}

constexpr char kPodName[] = "qfarm-worker-7c9d8b6f5-x2k4q";

class ManifestTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string kubectl = FindKubectl();
    absl::StatusOr<Docs> docs;
    if (kubectl.empty()) {
      // The base as written stands for the thread overlay (the binary's
      // default mode), which only adds --mode, --slots and resources.
      if (GetParam() != "thread") {
        GTEST_SKIP() << "kubectl not found (set $KUBECTL): the overlays "
                        "cannot be rendered; the base is checked as written "
                        "under thread";
      }
      docs = ReadKustomizationAsWritten(
          absl::StrCat(QFARM_SOURCE_DIR, "/deploy/k8s/base"));
    } else {
      const std::string dir =
          absl::StrCat(QFARM_SOURCE_DIR, "/deploy/k8s/overlays/", GetParam());
      CommandResult r = RunCommand({kubectl, "kustomize", dir});
      ASSERT_EQ(r.exit_code, 0) << "kubectl kustomize " << dir << "\n" << r.err;
      docs = YamlParser::ParseStream(r.out);
    }
    ASSERT_TRUE(docs.ok()) << docs.status();
    docs_ = *std::move(docs);
    const std::pair<const char*, const char*> kWanted[] = {
        {"StatefulSet", "qfarm-coordinator"},
        {"Service", "qfarm-coordinator"},
        {"Deployment", "qfarm-worker"},
        {"Job", "qfarm-seed"}};
    for (const auto& [kind, name] : kWanted) {
      ASSERT_FALSE(Find(docs_, kind, name).IsNull())
          << GetParam() << " renders no " << kind << " " << name;
    }
  }

  const Yaml& Coordinator() const {
    return Find(docs_, "StatefulSet", "qfarm-coordinator");
  }
  const Yaml& Service() const {
    return Find(docs_, "Service", "qfarm-coordinator");
  }
  const Yaml& Worker() const {
    return Find(docs_, "Deployment", "qfarm-worker");
  }
  const Yaml& SeedJob() const { return Find(docs_, "Job", "qfarm-seed"); }

  // "qfarm-coordinator:50051": what clients and workers must dial.
  std::string ServiceAddress() const {
    return absl::StrCat(Service()["metadata"]["name"].Str(), ":",
                        Service()["spec"]["ports"].At(0)["port"].Str());
  }

  Docs docs_;
};

TEST_P(ManifestTest, RunsTheSeedJobAndDrainsInsideTheGracePeriod) {
  TempDir dir;
  const std::string coordinator_log = dir.path() + "/coordinator.log";
  const std::string worker_log = dir.path() + "/worker.log";
  auto logs = [&] {
    return absl::StrCat("--- coordinator.log\n", ReadFile(coordinator_log),
                        "--- worker.log\n", ReadFile(worker_log));
  };

  // The coordinator, listening on 127.0.0.1:0 instead of the pod's port.
  auto coordinator_process =
      ContainerProcess(docs_, Coordinator(), "qfarm-coordinator-0");
  ASSERT_TRUE(coordinator_process.ok()) << coordinator_process.status();
  std::vector<std::string> argv = coordinator_process->argv;
  ASSERT_FALSE(argv.empty());
  const std::string listen = FlagValue(argv, "listen");
  ASSERT_FALSE(listen.empty()) << "the coordinator's args set no --listen";
  ASSERT_EQ(Rewrite(&argv, "--listen=", "127.0.0.1:0"), 1);
  // The journal goes to the volume's mount path in the pod, a temp dir here.
  EXPECT_EQ(FlagValue(argv, "data-dir"), "/var/lib/qfarm");
  ASSERT_EQ(Rewrite(&argv, "--data-dir=", dir.path() + "/data"), 1);
  ASSERT_EQ(Rewrite(&argv, "--metrics-listen=", "127.0.0.1:0"), 1);
  const std::string health_listen = FlagValue(argv, "health-listen");
  ASSERT_EQ(Rewrite(&argv, "--health-listen=", "127.0.0.1:0"), 1);
  argv[0] = BinPath(argv[0]);
  auto coordinator = Subprocess::Start(
      argv, {.stderr_path = coordinator_log, .env = coordinator_process->env});
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  absl::StatusOr<std::string> line =
      (*coordinator)->ReadLine(absl::Seconds(20));
  ASSERT_TRUE(line.ok()) << line.status() << "\n" << logs();
  constexpr absl::string_view kListening = "qfarm-coordinator listening on ";
  ASSERT_TRUE(absl::StartsWith(*line, kListening)) << *line;
  const std::string address(line->substr(kListening.size()));
  absl::StatusOr<std::string> health_address =
      ReadAddress(**coordinator, "qfarm-coordinator health on ");
  ASSERT_TRUE(health_address.ok()) << health_address.status() << logs();

  // The kubelet's grpc probes: the health port, the service they name.
  for (const char* probe : {"readinessProbe", "livenessProbe"}) {
    const Yaml& grpc_probe = MainContainer(Coordinator())[probe]["grpc"];
    ASSERT_FALSE(grpc_probe.IsNull()) << probe << " is not a grpc probe";
    EXPECT_EQ(grpc_probe["port"].Str(), PortOf(health_listen)) << probe;
    auto health = CheckHealth(*health_address, grpc_probe["service"].Str());
    ASSERT_TRUE(health.ok()) << probe << ": " << health.status();
    EXPECT_EQ(*health, grpc::health::v1::HealthCheckResponse::SERVING) << probe;
  }

  // The worker, dialling the real address instead of the Service's.
  auto worker_process = ContainerProcess(docs_, Worker(), kPodName);
  ASSERT_TRUE(worker_process.ok()) << worker_process.status();
  argv = worker_process->argv;
  std::vector<std::string> env = worker_process->env;
  EXPECT_EQ(FlagValue(argv, "coordinator"), ServiceAddress());
  ASSERT_EQ(Rewrite(&argv, "--coordinator=", address), 1);
  ASSERT_EQ(Rewrite(&argv, "--metrics-listen=", "127.0.0.1:0"), 1);
  const std::string worker_health_listen = FlagValue(argv, "health-listen");
  ASSERT_EQ(Rewrite(&argv, "--health-listen=", "127.0.0.1:0"), 1);
  Rewrite(&env, "QFARM_COORDINATOR=", address);
  argv[0] = BinPath(argv[0]);
  auto worker =
      Subprocess::Start(argv, {.stderr_path = worker_log, .env = env});
  ASSERT_TRUE(worker.ok()) << worker.status();
  absl::StatusOr<std::string> worker_health =
      ReadAddress(**worker, "qfarm-worker health on ");
  ASSERT_TRUE(worker_health.ok()) << worker_health.status() << logs();

  // Until the coordinator lists it, under the pod's name.
  auto client = client::FarmClient::Create(
      {.address = address, .call_timeout = absl::Seconds(5)});
  const std::string mode = FlagValue(argv, "mode");
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  absl::Duration pause = absl::Milliseconds(5);
  bool listed = false;
  while (!listed) {
    absl::StatusOr<int> exited = (*worker)->WaitFor(absl::ZeroDuration());
    if (exited.ok()) {
      const std::string log = ReadFile(worker_log);
      if (mode == "auto" && absl::StrContains(log, "is not one of")) {
        GTEST_SKIP() << "this qfarm-worker does not accept --mode=auto yet "
                        "(issue \"Real queries\"): "
                     << log;
      }
      FAIL() << "the worker exited " << *exited << " with the manifest's "
             << "args: " << absl::StrJoin(argv, " ") << "\n"
             << logs();
    }
    auto workers = client->ListWorkers();
    if (workers.ok()) {
      for (const auto& w : *workers) {
        if (w.worker_id() != kPodName) continue;
        listed = true;
        if (!mode.empty()) {
          EXPECT_EQ(w.mode(), mode);
        }
        const std::string slots = FlagValue(argv, "slots");
        if (!slots.empty()) {
          EXPECT_EQ(absl::StrCat(w.slots()), slots);
        }
      }
    }
    ASSERT_LT(absl::Now(), deadline)
        << "the coordinator never listed worker " << kPodName << "\n"
        << logs();
    if (!listed) {
      absl::SleepFor(pause);  // Polling a remote condition, with backoff.
      pause = std::min(pause * 2, absl::Milliseconds(100));
    }
  }

  // The worker's liveness probe: SERVING while it runs; a stopped worker
  // (SIGSTOP: wedged as a whole) cannot answer within the probe's timeout,
  // which the kubelet counts as a failure; it answers again once resumed.
  const Yaml& liveness = MainContainer(Worker())["livenessProbe"];
  ASSERT_FALSE(liveness["grpc"].IsNull()) << "the worker has no grpc probe";
  EXPECT_EQ(liveness["grpc"]["port"].Str(), PortOf(worker_health_listen));
  absl::StatusOr<absl::Duration> probe_timeout = ProbeTimeout(liveness);
  ASSERT_TRUE(probe_timeout.ok()) << probe_timeout.status();
  const std::string probe_service = liveness["grpc"]["service"].Str();
  auto healthy = CheckHealth(*worker_health, probe_service, *probe_timeout);
  ASSERT_TRUE(healthy.ok()) << healthy.status() << logs();
  EXPECT_EQ(*healthy, grpc::health::v1::HealthCheckResponse::SERVING);
  (*worker)->Signal(SIGSTOP);
  auto stopped_health =
      CheckHealth(*worker_health, probe_service, *probe_timeout);
  (*worker)->Signal(SIGCONT);
  EXPECT_FALSE(stopped_health.ok())
      << "a stopped worker answered its liveness probe: " << *stopped_health;
  healthy = CheckHealth(*worker_health, probe_service, *probe_timeout);
  ASSERT_TRUE(healthy.ok()) << healthy.status() << logs();
  EXPECT_EQ(*healthy, grpc::health::v1::HealthCheckResponse::SERVING);

  // The seed Job, as written, against the real address.
  auto job_process = ContainerProcess(docs_, SeedJob(), "qfarm-seed-abcde");
  ASSERT_TRUE(job_process.ok()) << job_process.status();
  argv = job_process->argv;
  env = job_process->env;
  EXPECT_EQ(FlagValue(argv, "coordinator"), ServiceAddress());
  ASSERT_EQ(Rewrite(&argv, "--coordinator=", address), 1);
  Rewrite(&env, "QFARM_COORDINATOR=", address);
  argv[0] = BinPath(argv[0]);
  CommandResult job = RunCommand(argv, "", env);
  ASSERT_EQ(job.exit_code, 0) << absl::StrJoin(argv, " ") << "\n"
                              << job.out << job.err << logs();
  // "   3  ok         POD/thread-3     1000"
  const std::regex result_line(R"(^\s*\d+\s+(\S+)\s+(\S+)\s.*$)");
  int ok = 0;
  for (absl::string_view l : absl::StrSplit(job.out, '\n', absl::SkipEmpty())) {
    std::smatch m;
    const std::string s(l);
    ASSERT_TRUE(std::regex_match(s, m, result_line)) << s;
    EXPECT_EQ(m[1], "ok") << s;
    EXPECT_TRUE(absl::StartsWith(m[2].str(), absl::StrCat(kPodName, "/"))) << s;
    ++ok;
  }
  int64_t repeat = 1;
  if (std::string r = FlagValue(argv, "repeat"); !r.empty()) {
    ASSERT_TRUE(absl::SimpleAtoi(r, &repeat)) << r;
  }
  EXPECT_EQ(ok, repeat) << job.out;

  // The drain: SIGTERM with tasks running; the worker must finish them and
  // exit 0 before the kubelet's SIGKILL at terminationGracePeriodSeconds.
  auto grace = Seconds(PodSpec(Worker())["terminationGracePeriodSeconds"]);
  ASSERT_TRUE(grace.ok()) << "worker terminationGracePeriodSeconds: "
                          << grace.status();
  absl::Duration drain_grace;
  ASSERT_TRUE(absl::ParseDuration(
      FlagValue(worker_process->argv, "drain-grace"), &drain_grace))
      << "the worker's args set no --drain-grace";
  EXPECT_LT(drain_grace, absl::Seconds(*grace))
      << "--drain-grace must end before terminationGracePeriodSeconds";
  CommandResult submitted =
      RunCommand({BinPath("qfarm"), absl::StrCat("--coordinator=", address),
                  "submit", "sleep:2s", "--repeat=3"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string job_id(absl::StripAsciiWhitespace(submitted.out));
  pause = absl::Milliseconds(5);
  const absl::Time taken_deadline = absl::Now() + absl::Seconds(30);
  while (true) {
    auto workers = client->ListWorkers();
    if (workers.ok() && !workers->empty() && (*workers)[0].in_flight() > 0) {
      break;
    }
    ASSERT_LT(absl::Now(), taken_deadline)
        << "the worker never took the tasks\n"
        << logs();
    absl::SleepFor(pause);  // Polling a remote condition, with backoff.
    pause = std::min(pause * 2, absl::Milliseconds(50));
  }
  const absl::Time sigterm = absl::Now();
  (*worker)->Signal(SIGTERM);
  absl::StatusOr<int> drained = (*worker)->WaitFor(absl::Seconds(*grace));
  const absl::Duration took = absl::Now() - sigterm;
  ASSERT_TRUE(drained.ok())
      << "the worker did not exit within " << *grace << " s of SIGTERM\n"
      << logs();
  EXPECT_EQ(*drained, 0) << logs();
  EXPECT_LT(took, absl::Seconds(*grace));
  // What it was running finished during the drain.
  CommandResult watched =
      RunCommand({BinPath("qfarm"), absl::StrCat("--coordinator=", address),
                  "watch", job_id});
  EXPECT_EQ(watched.exit_code, 0) << watched.out << watched.err << logs();

  // The coordinator stops inside its own grace period.
  auto coordinator_grace =
      Seconds(PodSpec(Coordinator())["terminationGracePeriodSeconds"]);
  ASSERT_TRUE(coordinator_grace.ok()) << coordinator_grace.status();
  (*coordinator)->Signal(SIGTERM);
  absl::StatusOr<int> stopped =
      (*coordinator)->WaitFor(absl::Seconds(*coordinator_grace));
  ASSERT_TRUE(stopped.ok()) << "the coordinator did not stop\n" << logs();
  EXPECT_EQ(*stopped, 0) << logs();
}

// Kubernetes' grpc probes speak plaintext: with TLS on (the flags the
// manifest's comments name, with a certificate made here), the main port
// refuses them and the health-only port the probes name answers SERVING.
TEST_P(ManifestTest, ProbesAnswerWhenTheCoordinatorServesTls) {
  TempDir dir;
  const std::string cert = dir.path() + "/tls.crt";
  const std::string key = dir.path() + "/tls.key";
  CommandResult openssl = RunCommand(
      {"/usr/bin/env", "openssl", "req", "-x509", "-newkey", "rsa:2048",
       "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
       "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert});
  ASSERT_EQ(openssl.exit_code, 0) << openssl.err;

  auto process = ContainerProcess(docs_, Coordinator(), "qfarm-coordinator-0");
  ASSERT_TRUE(process.ok()) << process.status();
  std::vector<std::string> argv = process->argv;
  const std::string health_listen = FlagValue(argv, "health-listen");
  ASSERT_FALSE(health_listen.empty())
      << "the coordinator's args set no --health-listen";
  ASSERT_EQ(Rewrite(&argv, "--listen=", "127.0.0.1:0"), 1);
  ASSERT_EQ(Rewrite(&argv, "--data-dir=", dir.path() + "/data"), 1);
  ASSERT_EQ(Rewrite(&argv, "--metrics-listen=", "127.0.0.1:0"), 1);
  ASSERT_EQ(Rewrite(&argv, "--health-listen=", "127.0.0.1:0"), 1);
  argv.push_back("--tls-cert=" + cert);
  argv.push_back("--tls-key=" + key);
  argv.push_back("--tls-ca=" + cert);
  argv[0] = BinPath(argv[0]);
  const std::string log = dir.path() + "/coordinator.log";
  auto coordinator =
      Subprocess::Start(argv, {.stderr_path = log, .env = process->env});
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  absl::StatusOr<std::string> address =
      ReadAddress(**coordinator, "qfarm-coordinator listening on ");
  ASSERT_TRUE(address.ok()) << address.status() << ReadFile(log);
  absl::StatusOr<std::string> health =
      ReadAddress(**coordinator, "qfarm-coordinator health on ");
  ASSERT_TRUE(health.ok()) << health.status() << ReadFile(log);

  for (const char* name : {"readinessProbe", "livenessProbe"}) {
    const Yaml& probe = MainContainer(Coordinator())[name];
    ASSERT_FALSE(probe["grpc"].IsNull()) << name << " is not a grpc probe";
    EXPECT_EQ(probe["grpc"]["port"].Str(), PortOf(health_listen)) << name;
    absl::StatusOr<absl::Duration> timeout = ProbeTimeout(probe);
    ASSERT_TRUE(timeout.ok()) << name << ": " << timeout.status();
    const std::string service = probe["grpc"]["service"].Str();
    auto answer = CheckHealth(*health, service, *timeout);
    ASSERT_TRUE(answer.ok()) << name << ": " << answer.status();
    EXPECT_EQ(*answer, grpc::health::v1::HealthCheckResponse::SERVING) << name;
    // The same probe on the main port fails: TLS is on.
    EXPECT_FALSE(CheckHealth(*address, service, *timeout).ok()) << name;
  }

  (*coordinator)->Signal(SIGTERM);
  absl::StatusOr<int> stopped = (*coordinator)->WaitFor(absl::Seconds(30));
  ASSERT_TRUE(stopped.ok()) << ReadFile(log);
  EXPECT_EQ(*stopped, 0) << ReadFile(log);
}

// What schema validation cannot see: names, labels and ports that must
// agree across resources.
TEST_P(ManifestTest, PiecesReferToEachOther) {
  const Yaml& coordinator = Coordinator();
  const Yaml& container = MainContainer(coordinator);

  // The Service reaches the coordinator's gRPC port.
  const Yaml& service_port = Service()["spec"]["ports"].At(0);
  EXPECT_TRUE(Selects(Service()["spec"]["selector"], PodLabels(coordinator)));
  EXPECT_EQ(service_port["name"].Str(), "grpc");
  const Yaml& container_port = container["ports"].At(0);
  EXPECT_EQ(service_port["targetPort"].Str(), container_port["name"].Str());
  EXPECT_EQ(container_port["containerPort"].Str(),
            PortOf(FlagValue(MainContainer(coordinator)["args"].Strings(),
                             "listen")));
  const Yaml& headless =
      Find(docs_, "Service", coordinator["spec"]["serviceName"].Str());
  EXPECT_EQ(headless["spec"]["clusterIP"].Str(), "None")
      << "the StatefulSet's serviceName must be a headless Service";
  EXPECT_TRUE(Selects(headless["spec"]["selector"], PodLabels(coordinator)));

  // Workers, the Job and the ConfigMap name the Service.
  EXPECT_EQ(FlagValue(MainContainer(Worker())["args"].Strings(), "coordinator"),
            ServiceAddress());
  EXPECT_EQ(
      FlagValue(MainContainer(SeedJob())["args"].Strings(), "coordinator"),
      ServiceAddress());
  auto job_env = ContainerProcess(docs_, SeedJob(), "qfarm-seed-abcde");
  ASSERT_TRUE(job_env.ok()) << job_env.status();
  EXPECT_TRUE(std::find(job_env->env.begin(), job_env->env.end(),
                        absl::StrCat("QFARM_COORDINATOR=", ServiceAddress())) !=
              job_env->env.end())
      << "the Job's QFARM_COORDINATOR is not " << ServiceAddress() << ": "
      << absl::StrJoin(job_env->env, " ");

  // The NetworkPolicy guards the coordinator's port and admits the workers
  // and the Job.
  const Yaml& policy = Find(docs_, "NetworkPolicy", "qfarm-coordinator");
  ASSERT_FALSE(policy.IsNull());
  EXPECT_TRUE(Selects(policy["spec"]["podSelector"]["matchLabels"],
                      PodLabels(coordinator)));
  const Yaml& rule = policy["spec"]["ingress"].At(0);
  EXPECT_EQ(rule["ports"].At(0)["port"].Str(), container_port["name"].Str());
  const Yaml& expr =
      rule["from"].At(0)["podSelector"]["matchExpressions"].At(0);
  ASSERT_EQ(expr["operator"].Str(), "In");
  const std::vector<std::string> admitted = expr["values"].Strings();
  for (const Yaml* client : {&Worker(), &SeedJob()}) {
    const std::string role = PodLabels(*client)[expr["key"].Str()].Str();
    EXPECT_TRUE(std::find(admitted.begin(), admitted.end(), role) !=
                admitted.end())
        << (*client)["metadata"]["name"].Str() << " is not admitted (label "
        << expr["key"].Str() << "=\"" << role << "\")";
  }

  // The HPA scales the worker Deployment, which leaves replicas to it and
  // requests CPU (the HPA's utilization is relative to the request).
  const Yaml& hpa = Find(docs_, "HorizontalPodAutoscaler", "qfarm-worker");
  EXPECT_EQ(hpa["spec"]["scaleTargetRef"]["kind"].Str(), "Deployment");
  EXPECT_EQ(hpa["spec"]["scaleTargetRef"]["name"].Str(),
            Worker()["metadata"]["name"].Str());
  EXPECT_TRUE(Worker()["spec"]["replicas"].IsNull());
  EXPECT_FALSE(
      MainContainer(Worker())["resources"]["requests"]["cpu"].IsNull());
  const Yaml& pdb = Find(docs_, "PodDisruptionBudget", "qfarm-worker");
  EXPECT_TRUE(
      Selects(pdb["spec"]["selector"]["matchLabels"], PodLabels(Worker())));
  EXPECT_TRUE(Selects(Worker()["spec"]["selector"]["matchLabels"],
                      PodLabels(Worker())));

  // The data volume is mounted where the journal will live.
  const std::string claim = coordinator["spec"]["volumeClaimTemplates"]
                                .At(0)["metadata"]["name"]
                                .Str();
  bool mounted = false;
  for (const Yaml& m : container["volumeMounts"].seq) {
    if (m["name"].Str() == claim && m["mountPath"].Str() == "/var/lib/qfarm") {
      mounted = true;
    }
  }
  EXPECT_TRUE(mounted) << "volumeClaimTemplate " << claim
                       << " is not mounted at /var/lib/qfarm";

  // Secrets are optional: pods start before anyone creates them.
  for (const Yaml* workload : {&coordinator, &Worker(), &SeedJob()}) {
    for (const Yaml& v : PodSpec(*workload)["volumes"].seq) {
      if (v["secret"].IsNull()) continue;
      EXPECT_EQ(v["secret"]["optional"].Str(), "true")
          << (*workload)["metadata"]["name"].Str() << " volume "
          << v["name"].Str();
    }
  }
}

TEST_P(ManifestTest, EveryPodIsLockedDown) {
  for (const Yaml* workload : {&Coordinator(), &Worker(), &SeedJob()}) {
    const std::string name = (*workload)["metadata"]["name"].Str();
    const Yaml& pod = PodSpec(*workload);
    EXPECT_EQ(pod["securityContext"]["runAsNonRoot"].Str(), "true") << name;
    EXPECT_EQ(pod["securityContext"]["runAsUser"].Str(), "10001") << name;
    EXPECT_EQ(pod["securityContext"]["seccompProfile"]["type"].Str(),
              "RuntimeDefault")
        << name;
    EXPECT_EQ(pod["automountServiceAccountToken"].Str(), "false") << name;
    ASSERT_FALSE(pod["containers"].seq.empty()) << name;
    for (const Yaml& c : pod["containers"].seq) {
      const Yaml& sc = c["securityContext"];
      EXPECT_EQ(sc["allowPrivilegeEscalation"].Str(), "false") << name;
      EXPECT_EQ(sc["readOnlyRootFilesystem"].Str(), "true") << name;
      EXPECT_EQ(sc["capabilities"]["drop"].Strings(),
                std::vector<std::string>{"ALL"})
          << name;
      for (const char* kind : {"requests", "limits"}) {
        for (const char* resource : {"cpu", "memory"}) {
          EXPECT_FALSE(c["resources"][kind][resource].IsNull())
              << name << " " << kind << "." << resource;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Overlays, ManifestTest,
                         ::testing::Values("thread", "async", "auto"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace qfarm::testing
