// Steps launched on the GPU before the one ahead of them finished (LlamaModel::launch,
// then finish in order, as a stage alone runs two micro-batches), on one stream and on
// two lanes (CONVEYOR_CUDA_LANES=2) that may run them at once: every greedy and
// sampled token, and every logit row sent to the host, equals what the same steps give
// run one at a time; and decode steps replayed as CUDA graphs (CONVEYOR_CUDA_GRAPHS=1) on
// two lanes at once agree with the same recorded steps one by one. The tokens come back
// through the CUDA backend's page-locked staging (kernels/cuda/pinned_staging.h) and land
// only at each step's fence. Skipped without a GPU; built everywhere.
#include <doctest/doctest.h>

#include <cstdlib>
#include <vector>

#include "tests/gpu/cuda_twin.h"
#include "tests/model/model_fixture.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

constexpr int kDecodeSteps = 6;

// What a group of sequences produced: each step's tokens, and the logits of kLast rows.
struct GroupOutput {
  std::vector<std::int32_t> tokens;
  std::vector<float> logits;
};

// The same row every run: sampled sequences draw with a fixed uniform per step.
SampleRow sample_row(std::size_t sequence, int step) {
  SampleRow row;
  row.temperature = 0.8f;
  row.top_k = 20;
  row.top_p = 0.95f;
  row.uniform =
      0.05 +
      0.9 * static_cast<double>((sequence * 7 + static_cast<std::size_t>(step) * 3) % 11) / 11.0;
  return row;
}

// One group: the sequences with ids [first, first + count), their kind by id: greedy on the
// device, sampled on the device, logits to the host.
class Group {
 public:
  Group(LoadedModel& m, const std::vector<std::vector<std::int32_t>>& prompts, std::size_t first,
        std::size_t count)
      : m_(m) {
    for (std::size_t i = first; i < first + count; ++i) {
      const auto id = static_cast<SequenceId>(i);
      REQUIRE(
          m.blocks->reserve(id, static_cast<std::int64_t>(prompts[i].size()) + kDecodeSteps + 1));
      ids_.push_back(id);
      contexts_.push_back(prompts[i]);
      starts_.push_back(0);
    }
  }

  std::unique_ptr<LaunchedStep> launch(int step, int lane) {
    steps_.clear();
    rows_.clear();
    tokens_.clear();
    for (std::size_t s = 0; s < ids_.size(); ++s) {
      const auto& context = contexts_[s];
      tokens_.emplace_back(context.begin() + starts_[s], context.end());
    }
    for (std::size_t s = 0; s < ids_.size(); ++s) {
      const LogitsWanted wanted = ids_[s] % 3 == 0   ? LogitsWanted::kGreedy
                                  : ids_[s] % 3 == 1 ? LogitsWanted::kSampled
                                                     : LogitsWanted::kLast;
      steps_.push_back({tokens_[s], starts_[s], m_.blocks->block_table(ids_[s]), wanted});
      if (wanted == LogitsWanted::kSampled) rows_.push_back(sample_row(s, step));
    }
    return m_.model->launch(steps_, nullptr, rows_, lane);
  }

  void finish(LaunchedStep& launched, GroupOutput& out) {
    const StepResult result = m_.model->finish(launched);
    const std::int64_t vocab = m_.model->spec().vocab_size;
    for (std::size_t s = 0; s < ids_.size(); ++s) {
      starts_[s] = static_cast<std::int64_t>(contexts_[s].size());
      std::int32_t token = 0;
      switch (steps_[s].logits) {
        case LogitsWanted::kGreedy:
          token = result.greedy[s];
          break;
        case LogitsWanted::kSampled:
          token = result.sampled[s];
          break;
        default: {
          const auto row = result.row(result.logits_begin[s], vocab);
          out.logits.insert(out.logits.end(), row.begin(), row.end());
          token = static_cast<std::int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
        }
      }
      REQUIRE(token >= 0);
      out.tokens.push_back(token);
      contexts_[s].push_back(token);
    }
  }

 private:
  LoadedModel& m_;
  std::vector<SequenceId> ids_;
  std::vector<std::vector<std::int32_t>> contexts_;
  std::vector<std::int64_t> starts_;
  std::vector<std::vector<std::int32_t>> tokens_;
  std::vector<SequenceStep> steps_;
  std::vector<SampleRow> rows_;
};

// A backend with `lanes` lanes (CONVEYOR_CUDA_LANES=2), recording decode steps with
// `graphs` (CONVEYOR_CUDA_GRAPHS=1).
std::unique_ptr<Backend> backend_for(int lanes, bool graphs) {
  if (graphs) setenv("CONVEYOR_CUDA_GRAPHS", "1", 1);
  auto backend =
      lanes == 2 ? gpu_backend_with("CONVEYOR_CUDA_LANES", "2", 0.05) : gpu_backend(0.05);
  unsetenv("CONVEYOR_CUDA_GRAPHS");
  return backend;
}

// Both groups' outputs over a prefill and kDecodeSteps decode steps, the second group's
// step launched before the first's finished when `overlapped`.
// With `lanes` 2, the groups' steps go to the backend's two lanes and may run at once.
std::vector<GroupOutput> run(const std::vector<std::vector<std::int32_t>>& prompts, bool overlapped,
                             int lanes = 1, bool graphs = false) {
  LoadedModel m = load_model(hf_tiny_dir("llama-tiny"), 1, 16, 64, {}, backend_for(lanes, graphs));
  REQUIRE(m.backend->capabilities().step_recording == graphs);
  REQUIRE(m.model->lanes() == lanes);
  const int second_lane = lanes - 1;
  const std::size_t half = prompts.size() / 2;
  Group a(m, prompts, 0, half);
  Group b(m, prompts, half, prompts.size() - half);
  std::vector<GroupOutput> out(2);
  for (int step = 0; step <= kDecodeSteps; ++step) {
    if (overlapped) {
      const auto first = a.launch(step, 0);
      const auto second = b.launch(step, second_lane);
      a.finish(*first, out[0]);
      b.finish(*second, out[1]);
    } else {
      a.finish(*a.launch(step, 0), out[0]);
      b.finish(*b.launch(step, second_lane), out[1]);
    }
  }
  return out;
}

// The reference prompts twice: each group holds one sequence of each kind.
std::vector<std::vector<std::int32_t>> reference_prompts_twice() {
  std::vector<std::vector<std::int32_t>> prompts;
  for (int copy = 0; copy < 2; ++copy) {
    for (const ReferenceCase& rc : load_reference("llama-tiny"))
      prompts.push_back(rc.input_ids);
  }
  REQUIRE(prompts.size() == 6);
  return prompts;
}

}  // namespace

TEST_CASE("steps launched before the last one finished give the tokens of steps run one by one" *
          doctest::skip(no_gpu())) {
  const auto prompts = reference_prompts_twice();
  const auto serial = run(prompts, false);
  const auto overlapped = run(prompts, true);
  const auto two_lanes = run(prompts, true, 2);
  for (std::size_t g = 0; g < 2; ++g) {
    CAPTURE(g);
    CHECK(overlapped[g].tokens == serial[g].tokens);
    CHECK(overlapped[g].logits == serial[g].logits);
    // The same kernels on the same shapes, on two streams at once.
    CHECK(two_lanes[g].tokens == serial[g].tokens);
    CHECK(two_lanes[g].logits == serial[g].logits);
  }
}

TEST_CASE(
    "recorded decode steps on two lanes at once give the tokens of recorded steps one by "
    "one" *
    doctest::skip(no_gpu())) {
  const auto prompts = reference_prompts_twice();
  // Both pad their decode steps alike (three rows to eight), so the products see the same
  // shapes: the replayed graphs, one lane at a time or two at once, agree bit for bit.
  const auto serial = run(prompts, false, 1, true);
  const auto two_lanes = run(prompts, true, 2, true);
  for (std::size_t g = 0; g < 2; ++g) {
    CAPTURE(g);
    CHECK(two_lanes[g].tokens == serial[g].tokens);
    CHECK(two_lanes[g].logits == serial[g].logits);
  }
}
