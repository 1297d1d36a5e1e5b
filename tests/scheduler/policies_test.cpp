// The scheduler's policies as pure functions: each table row is one input state and
// the decision expected for it.
#include "coordinator/scheduler/policies.h"

#include <doctest/doctest.h>

#include <vector>

namespace conveyor {
namespace {

SequenceState seq(std::int64_t id, std::int64_t context, std::int64_t cached = 0,
                  std::int64_t blocks = 0, bool in_flight = false) {
  return {id, context, cached, blocks, in_flight};
}

TEST_CASE(
    "admission: continuous batching admits in queue order while sequences, budget and "
    "blocks last") {
  struct Row {
    const char* what;
    std::vector<SequenceState> waiting;
    std::int64_t running, free_blocks, budget, max_sequences, expected;
  };
  // block_size 4 throughout.
  const std::vector<Row> rows = {
      {"empty queue", {}, 0, 10, 100, 8, 0},
      {"all fit", {seq(1, 5), seq(2, 3)}, 0, 10, 100, 8, 2},
      {"max_sequences caps", {seq(1, 5), seq(2, 3), seq(3, 1)}, 6, 10, 100, 8, 2},
      {"budget ends: first chunk only needs blocks", {seq(1, 20), seq(2, 3)}, 0, 2, 8, 8, 1},
      {"budget exhausted", {seq(1, 5)}, 0, 10, 0, 8, 0},
      {"second does not fit the blocks: queue order kept",
       {seq(1, 8), seq(2, 9), seq(3, 1)},
       0,
       4,
       100,
       8,
       1},
      {"partial first chunk takes the budget's blocks only", {seq(1, 100)}, 0, 1, 4, 8, 1},
      {"a preempted sequence resumes with its whole context", {seq(1, 12)}, 0, 2, 100, 8, 0},
  };
  for (const Row& row : rows) {
    CAPTURE(row.what);
    AdmissionPolicy policy{row.max_sequences, 4, false};
    CHECK(policy.admit(row.waiting, row.running, row.free_blocks, row.budget) == row.expected);
  }
}

TEST_CASE("admission: the watermark keeps blocks free for running sequences to grow into") {
  AdmissionPolicy policy{8, 4, false, 2};
  const std::vector<SequenceState> waiting = {seq(1, 8), seq(2, 4)};
  CHECK(policy.admit(waiting, 1, 4, 100) == 1);  // 2 blocks + 2 kept: 4; then none left
  CHECK(policy.admit(waiting, 1, 3, 100) == 0);  // 2 + 2 > 3
  CHECK(policy.admit(waiting, 1, 5, 100) == 2);  // 2 + 2 <= 5, then 1 + 2 <= 3
  // With nothing running there is nothing to keep room for: a prompt may take all.
  const std::vector<SequenceState> whole = {seq(3, 16)};
  CHECK(policy.admit(whole, 0, 4, 100) == 1);
}

TEST_CASE("admission: static batching forms a batch only when none runs, whole prompts") {
  AdmissionPolicy policy{3, 4, true};
  const std::vector<SequenceState> waiting = {seq(1, 8), seq(2, 4), seq(3, 4), seq(4, 4)};
  CHECK(policy.admit(waiting, 1, 100, 100) == 0);  // a batch is running
  CHECK(policy.admit(waiting, 0, 100, 1) == 3);    // the budget does not limit a batch
  CHECK(policy.admit(waiting, 0, 3, 100) == 2);    // blocks do: 2 + 1, then 1 more is 4
}

TEST_CASE("step planning: decodes first, then prefill chunks under the token budget") {
  struct Row {
    const char* what;
    std::vector<SequenceState> running;
    std::int64_t budget, max_batch;
    std::vector<StepChunk> expected;
  };
  const std::vector<Row> rows = {
      {"nothing running", {}, 8, 0, {}},
      {"one prefill, chunked", {seq(1, 20)}, 8, 0, {{0, 8}}},
      {"prefill resumes from its cached part", {seq(1, 20, 16, 4)}, 8, 0, {{0, 4}}},
      {"decodes before an older prefill",
       {seq(1, 20, 8, 2), seq(2, 6, 5, 2), seq(3, 9, 8, 3)},
       8,
       0,
       {{1, 1}, {2, 1}, {0, 6}}},
      {"budget runs out mid-list", {seq(1, 10), seq(2, 10), seq(3, 10)}, 12, 0, {{0, 10}, {1, 2}}},
      {"in-flight sequences are skipped",
       {seq(1, 6, 5, 2, true), seq(2, 6, 5, 2), seq(3, 4)},
       8,
       0,
       {{1, 1}, {2, 4}}},
      {"micro-batch size cap", {seq(1, 6, 5), seq(2, 6, 5), seq(3, 6, 5)}, 8, 2, {{0, 1}, {1, 1}}},
      {"fully cached sequences (awaiting a token) are skipped", {seq(1, 6, 6)}, 8, 0, {}},
  };
  for (const Row& row : rows) {
    CAPTURE(row.what);
    StepPolicy policy{row.budget, row.max_batch};
    CHECK(policy.plan(row.running) == row.expected);
  }
}

TEST_CASE("preemption: newest first, skipping in-flight and blockless sequences") {
  struct Row {
    const char* what;
    std::vector<SequenceState> running;
    std::int64_t shortage;
    std::vector<std::size_t> victims;
    std::int64_t freed;
  };
  const std::vector<Row> rows = {
      {"nothing needed", {seq(1, 4, 4, 1)}, 0, {}, 0},
      {"newest covers it", {seq(1, 4, 4, 1), seq(2, 8, 8, 2)}, 2, {1}, 2},
      {"two newest", {seq(1, 4, 4, 3), seq(2, 4, 4, 1), seq(3, 4, 4, 1)}, 2, {2, 1}, 2},
      {"in flight is spared",
       {seq(1, 4, 4, 3), seq(2, 4, 4, 1), seq(3, 4, 4, 1, true)},
       2,
       {1, 0},
       4},
      {"not enough anywhere", {seq(1, 4, 4, 1), seq(2, 4, 4, 1, true)}, 3, {0}, 1},
      {"blockless sequences are no use", {seq(1, 4, 4, 2), seq(2, 4)}, 1, {0}, 2},
  };
  for (const Row& row : rows) {
    CAPTURE(row.what);
    const Preemption p = PreemptionPolicy{}.choose(row.running, row.shortage);
    CHECK(p.victims == row.victims);
    CHECK(p.freed_blocks == row.freed);
  }
}

TEST_CASE("swap policy: a tier with room, host first, when moving costs less than recomputing") {
  SwapPolicy policy;
  policy.costs.block_bytes = 1 << 20;  // 1 MiB a block
  policy.costs.host_bytes_per_second = 1e9;
  policy.costs.disk_bytes_per_second = 1e8;
  policy.costs.recompute_tokens_per_second = 1000;
  struct Row {
    const char* what;
    PreemptionMode mode;
    std::int64_t blocks, cached, host_free, disk_free;
    std::optional<KvTierId> tier;
  };
  // 4 blocks out and back: 8 MiB, 8.4 ms to host, 84 ms to disk; 64 positions
  // recompute in 64 ms.
  const Row rows[] = {
      {"recompute mode never swaps", PreemptionMode::kRecompute, 4, 64, 100, 100, std::nullopt},
      {"host is cheaper than recomputing", PreemptionMode::kAuto, 4, 64, 100, 100, KvTierId::kHost},
      {"disk is dearer than recomputing", PreemptionMode::kAuto, 4, 64, 3, 100, std::nullopt},
      {"disk wins over a long recompute", PreemptionMode::kAuto, 4, 640, 3, 100, KvTierId::kDisk},
      {"swap mode takes disk whatever it costs", PreemptionMode::kSwap, 4, 64, 3, 4,
       KvTierId::kDisk},
      {"no tier has room", PreemptionMode::kSwap, 4, 64, 3, 3, std::nullopt},
      {"nothing computed, nothing to keep", PreemptionMode::kSwap, 0, 0, 100, 100, std::nullopt},
  };
  for (const Row& row : rows) {
    CAPTURE(row.what);
    policy.mode = row.mode;
    CHECK(policy.choose(row.blocks, row.cached, row.host_free, row.disk_free) == row.tier);
  }
  // Before any step was measured, a swap is taken to be cheaper.
  policy.mode = PreemptionMode::kAuto;
  policy.costs.recompute_tokens_per_second = 0;
  CHECK(policy.choose(4, 16, 0, 100) == KvTierId::kDisk);
}

}  // namespace
}  // namespace conveyor
