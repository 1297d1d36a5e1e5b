// Parity with Hugging Face transformers (fp32, eager attention) on the hf-tiny
// fixtures: logits at every position, greedy continuations decoded step by step
// through the paged KV cache, and the same logits whatever the batching or chunking.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <string>

#include "tests/model/model_fixture.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

constexpr float kTolerance = 1e-4f;

const char* const kModels[] = {"llama-tiny", "llama-tiny-tied", "llama3-tiny-ropescaling",
                               "qwen2-tiny", "mistral-tiny-swa"};

// Runs one step holding whole prompts (all logits wanted) for the given cases.
StepResult prefill_all(LoadedModel& m, const std::vector<const ReferenceCase*>& cases) {
  std::vector<SequenceStep> step;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto id = static_cast<SequenceId>(i);
    m.blocks->release(id);
    REQUIRE(m.blocks->reserve(id, static_cast<std::int64_t>(cases[i]->input_ids.size())));
    step.push_back({cases[i]->input_ids, 0, m.blocks->block_table(id), LogitsWanted::kAll});
  }
  StepResult out = m.model->forward(step);
  for (std::size_t i = 0; i < cases.size(); ++i)
    m.blocks->release(static_cast<SequenceId>(i));
  return out;
}

// Worst error over every position of one case, whose rows start at `first_row`.
float case_error(const StepResult& out, std::int64_t first_row, const ReferenceCase& rc,
                 std::int64_t vocab) {
  float worst = 0;
  for (std::size_t p = 0; p < rc.logits.size(); ++p) {
    worst = std::max(worst, max_abs_error(out.row(first_row + static_cast<std::int64_t>(p), vocab),
                                          rc.logits[p]));
  }
  return worst;
}

}  // namespace

TEST_CASE("logits at every position match transformers") {
  for (const std::string name : kModels) {
    CAPTURE(name);
    LoadedModel m = load_model(hf_tiny_dir(name));
    const auto cases = load_reference(name);
    const std::int64_t vocab = m.model->spec().vocab_size;
    std::ostringstream errors;
    for (std::size_t c = 0; c < cases.size(); ++c) {
      CAPTURE(c);
      const StepResult out = prefill_all(m, {&cases[c]});
      REQUIRE(out.logits_begin.back() == static_cast<std::int64_t>(cases[c].logits.size()));
      const float error = case_error(out, 0, cases[c], vocab);
      errors << " " << error;
      CHECK(error < kTolerance);
    }
    MESSAGE(name << ": max abs logit error per case (5, 24, 40 tokens):" << errors.str());
  }
}

TEST_CASE("three sequences of different lengths in one step give the logits each gives alone") {
  for (const std::string name : kModels) {
    CAPTURE(name);
    LoadedModel m = load_model(hf_tiny_dir(name));
    const auto cases = load_reference(name);
    const std::int64_t vocab = m.model->spec().vocab_size;
    const StepResult together = prefill_all(m, {&cases[0], &cases[1], &cases[2]});
    for (std::size_t c = 0; c < cases.size(); ++c) {
      CAPTURE(c);
      const std::int64_t first = together.logits_begin[c];
      CHECK(case_error(together, first, cases[c], vocab) < kTolerance);
      const StepResult alone = prefill_all(m, {&cases[c]});
      // Bit for bit: no op mixes values across sequences or depends on the batch size.
      CHECK(std::memcmp(alone.logits.data(), together.logits.data() + first * vocab,
                        alone.logits.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("prefill in chunks of 7 tokens gives the same logits as transformers") {
  for (const std::string name : kModels) {
    CAPTURE(name);
    // Block size 4: chunks straddle block boundaries.
    LoadedModel m = load_model(hf_tiny_dir(name), 2, 4, 64);
    const auto cases = load_reference(name);
    const std::int64_t vocab = m.model->spec().vocab_size;
    for (std::size_t c = 0; c < cases.size(); ++c) {
      CAPTURE(c);
      const auto& ids = cases[c].input_ids;
      float worst = 0;
      for (std::size_t begin = 0; begin < ids.size(); begin += 7) {
        const std::size_t n = std::min<std::size_t>(7, ids.size() - begin);
        REQUIRE(m.blocks->reserve(0, static_cast<std::int64_t>(begin + n)));
        const SequenceStep step{std::span<const std::int32_t>(ids).subspan(begin, n),
                                static_cast<std::int64_t>(begin), m.blocks->block_table(0),
                                LogitsWanted::kAll};
        const StepResult out = m.model->forward(std::span<const SequenceStep>(&step, 1));
        for (std::size_t i = 0; i < n; ++i) {
          worst = std::max(worst, max_abs_error(out.row(static_cast<std::int64_t>(i), vocab),
                                                cases[c].logits[begin + i]));
        }
      }
      m.blocks->release(0);
      CHECK(worst < kTolerance);
    }
  }
}

TEST_CASE("a model split into two pipeline stages gives the logits of the whole") {
  for (const std::string name : {"llama-tiny", "qwen2-tiny"}) {
    CAPTURE(name);
    LoadedModel first = load_model(hf_tiny_dir(name), 2, 16, 16, {0, 1});
    LoadedModel second = load_model(hf_tiny_dir(name), 2, 16, 16, {1, 3});
    CHECK(first.model->weights().has_embedding());
    CHECK(!first.model->weights().has_output());
    CHECK(!second.model->weights().has_embedding());
    CHECK(second.model->weights().has_output());
    const auto cases = load_reference(name);
    const auto& rc = cases[1];
    const std::int64_t vocab = first.model->spec().vocab_size;
    const auto n = static_cast<std::int64_t>(rc.input_ids.size());
    REQUIRE(first.blocks->reserve(0, n));
    REQUIRE(second.blocks->reserve(0, n));
    const SequenceStep s1{rc.input_ids, 0, first.blocks->block_table(0), LogitsWanted::kAll};
    const StepResult hidden = first.model->forward(std::span<const SequenceStep>(&s1, 1));
    CHECK(hidden.logits.empty());
    REQUIRE(hidden.hidden.size() == static_cast<std::size_t>(n * first.model->spec().hidden_size));
    const SequenceStep s2{rc.input_ids, 0, second.blocks->block_table(0), LogitsWanted::kAll};
    const StepResult out =
        second.model->forward(std::span<const SequenceStep>(&s2, 1), hidden.hidden.data());
    CHECK(case_error(out, 0, rc, vocab) < kTolerance);
  }
}
