// The wire format per task: a TaskBatch of 1,000 echo assignments and a
// ResultBatch of 1,000 results, encoded and decoded.
//
//   build/bin/proto_bench --benchmark_counters_tabular=true
#include <string>

#include "benchmark/benchmark.h"
#include "qfarm/v1/worker_link.pb.h"

namespace qfarm {
namespace {

constexpr int kBatch = 1000;

v1::TaskBatch MakeTaskBatch() {
  v1::TaskBatch batch;
  for (int i = 0; i < kBatch; ++i) {
    v1::Assignment* a = batch.add_assignments();
    a->set_job_id(7);
    a->set_index(static_cast<uint32_t>(i));
    a->set_attempt(1);
    a->mutable_task()->set_kind("echo");
    a->mutable_task()->set_text("x");
  }
  return batch;
}

v1::ResultBatch MakeResultBatch() {
  v1::ResultBatch batch;
  for (int i = 0; i < kBatch; ++i) {
    v1::TaskResult* r = batch.add_results();
    r->set_job_id(7);
    r->set_index(static_cast<uint32_t>(i));
    r->set_attempt(1);
    r->set_state(v1::TASK_STATE_OK);
    r->set_value("x");
    r->set_worker("worker-1");
    r->set_executor("async");
    r->set_started_us(1'700'000'000'000'000 + i);
    r->set_finished_us(1'700'000'000'000'001 + i);
  }
  return batch;
}

template <typename Message>
void Encode(benchmark::State& state, const Message& message) {
  std::string wire;
  for (auto _ : state) {
    wire.clear();
    message.SerializeToString(&wire);
    benchmark::DoNotOptimize(wire.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["bytes/task"] =
      static_cast<double>(message.ByteSizeLong()) / kBatch;
}

template <typename Message>
void Decode(benchmark::State& state, const Message& message) {
  const std::string wire = message.SerializeAsString();
  Message parsed;
  for (auto _ : state) {
    parsed.Clear();
    benchmark::DoNotOptimize(parsed.ParseFromString(wire));
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void BM_TaskBatchEncode(benchmark::State& state) {
  Encode(state, MakeTaskBatch());
}
void BM_TaskBatchDecode(benchmark::State& state) {
  Decode(state, MakeTaskBatch());
}
void BM_ResultBatchEncode(benchmark::State& state) {
  Encode(state, MakeResultBatch());
}
void BM_ResultBatchDecode(benchmark::State& state) {
  Decode(state, MakeResultBatch());
}
BENCHMARK(BM_TaskBatchEncode);
BENCHMARK(BM_TaskBatchDecode);
BENCHMARK(BM_ResultBatchEncode);
BENCHMARK(BM_ResultBatchDecode);

}  // namespace
}  // namespace qfarm
