// Decode steps recorded and replayed as CUDA graphs (CONVEYOR_CUDA_GRAPHS=1; the
// backend's replay_step, LlamaModel's padded decode steps) against the same steps run
// as they are: the same greedy tokens, and logits within the fp32 fixtures' bound, over
// batch sizes that pad to different recordings and a batch that shrinks. Skipped without
// a GPU; built everywhere.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tests/gpu/cuda_twin.h"
#include "tests/model/model_fixture.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

struct DecodeRun {
  std::vector<std::int32_t> tokens;
  std::vector<float> logits;  // the kLast sequence's, every step
};

// Eleven sequences of the reference prompts, decoding 24 steps; from step 12 on only the
// first five run (another recorded size). Sequence 1 sends its logits to the host.
DecodeRun decode(std::unique_ptr<Backend> backend) {
  LoadedModel m = load_model(hf_tiny_dir("llama-tiny"), 1, 16, 256, {}, std::move(backend));
  const auto cases = load_reference("llama-tiny");
  const std::int64_t vocab = m.model->spec().vocab_size;
  std::vector<std::vector<std::int32_t>> next;
  std::vector<std::int64_t> starts;
  for (std::size_t i = 0; i < 11; ++i) {
    const auto& prompt = cases[i % cases.size()].input_ids;
    REQUIRE(m.blocks->reserve(static_cast<SequenceId>(i),
                              static_cast<std::int64_t>(prompt.size()) + 32));
    next.push_back(prompt);
    starts.push_back(0);
  }
  DecodeRun run;
  for (int step = 0; step <= 24; ++step) {
    const std::size_t live = step < 12 ? 11 : 5;
    std::vector<SequenceStep> steps;
    for (std::size_t s = 0; s < live; ++s) {
      steps.push_back({next[s], starts[s], m.blocks->block_table(static_cast<SequenceId>(s)),
                       s == 1 ? LogitsWanted::kLast : LogitsWanted::kGreedy});
    }
    const StepResult out = m.model->forward(steps);
    for (std::size_t s = 0; s < live; ++s) {
      starts[s] += static_cast<std::int64_t>(next[s].size());
      std::int32_t token = out.greedy[s];
      if (s == 1) {
        const auto row = out.row(out.logits_begin[s], vocab);
        run.logits.insert(run.logits.end(), row.begin(), row.end());
        token = static_cast<std::int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
      }
      run.tokens.push_back(token);
      next[s] = {token};
    }
  }
  return run;
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
  float worst = 0;
  for (std::size_t i = 0; i < eager.logits.size(); ++i)
    worst = std::max(worst, std::abs(replayed.logits[i] - eager.logits[i]));
  CHECK(worst < 1e-4f);
  MESSAGE("largest logit difference, replayed against eager: " << worst);
}
