// Decode steps recorded and replayed as CUDA graphs (CONVEYOR_CUDA_GRAPHS=1; the
// backend's replay_step, LlamaModel's padded decode steps) against the same steps run
// as they are: the same greedy tokens, and logits within the fp32 fixtures' bound, over
// batch sizes that pad to different recordings and a batch that shrinks. Skipped without
// a GPU; built everywhere.
#include <doctest/doctest.h>

#include <vector>

#include "tests/gpu/cuda_twin.h"
#include "tests/greedy_decode.h"
#include "tests/model/model_fixture.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

// Eleven sequences of the reference prompts, decoding 24 steps; from step 12 on only the
// first five run (another recorded size). Sequence 1 sends its logits to the host.
DecodeRun decode(std::unique_ptr<Backend> backend) {
  LoadedModel m = load_model(hf_tiny_dir("llama-tiny"), 1, 16, 256, {}, std::move(backend));
  const auto cases = load_reference("llama-tiny");
  std::vector<std::vector<std::int32_t>> prompts;
  std::vector<std::span<const std::int32_t>> tables;
  for (std::size_t i = 0; i < 11; ++i) {
    prompts.push_back(cases[i % cases.size()].input_ids);
    REQUIRE(m.blocks->reserve(static_cast<SequenceId>(i),
                              static_cast<std::int64_t>(prompts.back().size()) + 32));
  }
  // Once every sequence has its blocks: the tables stay as they are from here on.
  for (std::size_t i = 0; i < 11; ++i)
    tables.push_back(m.blocks->block_table(static_cast<SequenceId>(i)));
  return greedy_decode(*m.model, prompts, tables, 24, 1,
                       [](int step) { return std::size_t{step < 12 ? 11u : 5u}; });
}

}  // namespace

TEST_CASE("decode steps replayed as CUDA graphs give the tokens of steps run as they are" *
          doctest::skip(no_gpu())) {
  const DecodeRun eager = decode(gpu_backend(0.05));
  auto recording = gpu_backend_with("CONVEYOR_CUDA_GRAPHS", "1", 0.05);
  REQUIRE(recording->capabilities().step_recording);
  const DecodeRun replayed = decode(std::move(recording));
  CHECK(replayed.tokens == eager.tokens);
  REQUIRE(replayed.logits.size() == eager.logits.size());
  const float worst = max_abs_error(replayed.logits, eager.logits);
  CHECK(worst < 1e-4f);
  MESSAGE("largest logit difference, replayed against eager: " << worst);
}
