#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "common/loader/open_model.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/model/model_fixture.h"
#include "worker/executor.h"

using namespace conveyor;

namespace {

constexpr std::int64_t kBlockSize = 4;

// Runs one sequence at a time through an executor, greedy, with the log-probability,
// which shows any K/V that differs.
struct Runner {
  Executor& executor;
  std::shared_ptr<const SequenceSampling> sampling;
  std::uint64_t next_step = 0;

  // One step of sequence `id` (a prefill from position `start`, or one decode token) on
  // `table`, after `swaps`: what the last stage sampled for it.
  SampleResult step(std::int64_t id, std::vector<std::int32_t> tokens, std::int64_t start,
                    std::vector<std::int32_t> table, std::vector<KvSwap> swaps = {}) {
    StepPlan plan;
    plan.step = next_step++;
    plan.swaps = std::move(swaps);
    PlannedSequence s;
    s.id = id;
    s.tokens = std::move(tokens);
    s.start = start;
    s.block_table = std::move(table);
    s.samples = true;
    s.sampling = sampling;
    plan.sequences.push_back(s);
    StageResult result = executor.run(plan, {});
    REQUIRE(result.samples.size() == 1);
    REQUIRE(result.samples[0].status.ok());
    return result.samples[0].sample;
  }
  // A step of swaps and releases only.
  StageResult bookkeeping(std::vector<KvSwap> swaps, std::vector<std::int64_t> released = {}) {
    StepPlan plan;
    plan.step = next_step++;
    plan.swaps = std::move(swaps);
    plan.released = std::move(released);
    return executor.run(plan, {});
  }
};

std::shared_ptr<const SequenceSampling> greedy(std::int64_t prompt_tokens) {
  auto sampling = std::make_shared<SequenceSampling>();
  sampling->params.temperature = 0;
  sampling->params.logprobs = true;
  sampling->prompt_tokens = prompt_tokens;
  return sampling;
}

}  // namespace

TEST_CASE("a sequence swapped to the host and back to other blocks decodes as if never moved") {
  auto source = open_model_source(testing::hf_tiny_dir("llama-tiny")).value();
  const testing::ReferenceCase reference = testing::load_reference("llama-tiny")[0];
  CpuBackend backend(CpuBackendOptions{1, std::nullopt, false});
  KvGeometry kv;
  kv.num_blocks = 16;
  kv.block_size = kBlockSize;
  kv.swap.host_blocks = 8;
  Executor executor(backend, *source, LayerRange::all(source->spec()), kv);
  CHECK(executor.swapper().capacity_blocks(KvTierId::kHost) == 8);

  const std::vector<std::int32_t>& prompt = reference.input_ids;
  const auto prompt_size = static_cast<std::int64_t>(prompt.size());
  Runner run{executor, greedy(prompt_size)};
  constexpr int kNewTokens = 6;
  // Enough blocks for the prompt and the new tokens.
  const auto blocks =
      static_cast<std::int32_t>((prompt_size + kNewTokens + kBlockSize - 1) / kBlockSize);
  REQUIRE(3 * blocks <= 16);
  const auto table_at = [&](std::int32_t first) {
    std::vector<std::int32_t> table;
    for (std::int32_t b = 0; b < blocks; ++b)
      table.push_back(first + b);
    return table;
  };

  // Without a swap, in blocks [0, blocks).
  std::vector<SampleResult> plain{run.step(1, prompt, 0, table_at(0))};
  for (int i = 1; i < kNewTokens; ++i) {
    plain.push_back(run.step(1, {plain.back().token}, prompt_size + i - 1, table_at(0)));
  }
  for (int i = 0; i < kNewTokens; ++i)
    CHECK(plain[static_cast<std::size_t>(i)].token == reference.greedy_new_tokens[i]);

  // Sequence 2 starts in [blocks, 2 blocks), swaps out after two tokens, and sequence 3
  // overwrites those blocks meanwhile; it comes back in [2 blocks, 3 blocks).
  std::vector<SampleResult> swapped{run.step(2, prompt, 0, table_at(blocks))};
  swapped.push_back(run.step(2, {swapped.back().token}, prompt_size, table_at(blocks)));
  const StageResult nothing =
      run.bookkeeping({KvSwap{2, KvSwap::Direction::kOut, KvTierId::kHost, table_at(blocks)}});
  CHECK(nothing.samples.empty());
  CHECK(nothing.hidden.empty());
  CHECK(executor.swapper().used_blocks(KvTierId::kHost) == blocks);
  run.step(3, {prompt.rbegin(), prompt.rend()}, 0, table_at(blocks));

  const KvSwap in{2, KvSwap::Direction::kIn, KvTierId::kHost, table_at(2 * blocks)};
  swapped.push_back(
      run.step(2, {swapped.back().token}, prompt_size + 1, table_at(2 * blocks), {in}));
  CHECK(executor.swapper().used_blocks(KvTierId::kHost) == 0);
  CHECK(executor.swapper().swapped_sequences() == 0);
  for (int i = 3; i < kNewTokens; ++i) {
    swapped.push_back(
        run.step(2, {swapped.back().token}, prompt_size + i - 1, table_at(2 * blocks)));
  }
  for (std::size_t i = 0; i < plain.size(); ++i) {
    CAPTURE(i);
    CHECK(swapped[i].token == plain[i].token);
    CHECK(swapped[i].logprob == plain[i].logprob);
  }

  // A sequence that leaves while swapped out gives its slots back with the release.
  run.bookkeeping({KvSwap{2, KvSwap::Direction::kOut, KvTierId::kHost, table_at(2 * blocks)}});
  CHECK(executor.swapper().used_blocks(KvTierId::kHost) == blocks);
  run.bookkeeping({}, {2});
  CHECK(executor.swapper().used_blocks(KvTierId::kHost) == 0);
}
