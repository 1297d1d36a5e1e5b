// LlamaModel behaviour beyond parity: thread-count independence, step validation,
// weight loading checks.
#include <doctest/doctest.h>

#include <cstring>

#include "common/hf/hf_model.h"
#include "common/status.h"
#include "tests/model/model_fixture.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

StepResult run_prompt(LoadedModel& m, const std::vector<std::int32_t>& ids) {
  REQUIRE(m.blocks->reserve(0, static_cast<std::int64_t>(ids.size())));
  const SequenceStep step{ids, 0, m.blocks->block_table(0), LogitsWanted::kAll};
  StepResult out = m.model->forward(std::span<const SequenceStep>(&step, 1));
  m.blocks->release(0);
  return out;
}

}  // namespace

TEST_CASE("logits do not depend on the number of threads, bit for bit") {
  const auto cases = load_reference("mistral-tiny-swa");
  LoadedModel one = load_model(hf_tiny_dir("mistral-tiny-swa"), 1);
  LoadedModel three = load_model(hf_tiny_dir("mistral-tiny-swa"), 3);
  const StepResult a = run_prompt(one, cases[2].input_ids);
  const StepResult b = run_prompt(three, cases[2].input_ids);
  REQUIRE(a.logits.size() == b.logits.size());
  CHECK(std::memcmp(a.logits.data(), b.logits.data(), a.logits.size() * sizeof(float)) == 0);
}

TEST_CASE("logits wanted: last row by default, none, or all") {
  LoadedModel m = load_model(hf_tiny_dir("llama-tiny"));
  const auto cases = load_reference("llama-tiny");
  const std::int64_t vocab = m.model->spec().vocab_size;
  REQUIRE(m.blocks->reserve(0, 24));
  REQUIRE(m.blocks->reserve(1, 5));
  const std::vector<SequenceStep> step{
      {cases[1].input_ids, 0, m.blocks->block_table(0), LogitsWanted::kNone},
      {cases[0].input_ids, 0, m.blocks->block_table(1)}};
  const StepResult out = m.model->forward(step);
  CHECK(out.logits_begin == std::vector<std::int64_t>{0, 0, 1});
  CHECK(out.logits.size() == static_cast<std::size_t>(vocab));
  CHECK(max_abs_error(out.row(0, vocab), cases[0].logits.back()) < 1e-4f);
}

TEST_CASE("forward refuses malformed steps") {
  LoadedModel m = load_model(hf_tiny_dir("llama-tiny"), 1, 4, 8);
  REQUIRE(m.blocks->reserve(0, 4));
  const std::vector<std::int32_t> five{3, 4, 5, 6, 7};
  const std::vector<std::int32_t> none;
  const std::vector<std::int32_t> outside{320};
  const auto table = m.blocks->block_table(0);
  auto forward_one = [&](const SequenceStep& s) {
    return m.model->forward(std::span<const SequenceStep>(&s, 1));
  };
  CHECK_THROWS_AS(m.model->forward({}), Error);
  CHECK_THROWS_AS(forward_one({five, 0, table}), Error);  // 5 positions, 4 reserved
  CHECK_THROWS_AS(forward_one({none, 0, table}), Error);
  CHECK_THROWS_AS(forward_one({outside, 0, table}), Error);
  const std::vector<float> hidden(64, 0.0f);
  CHECK_THROWS_AS(m.model->forward(std::span<const SequenceStep>(), hidden.data()), Error);
  // A first stage takes tokens only.
  const SequenceStep ok{std::span<const std::int32_t>(five).first(4), 0, table};
  CHECK_THROWS_AS(m.model->forward(std::span<const SequenceStep>(&ok, 1), hidden.data()), Error);
  CHECK_NOTHROW(forward_one(ok));
}

TEST_CASE("weights: tied output shares the embedding; bad ranges are refused") {
  LoadedModel tied = load_model(hf_tiny_dir("llama-tiny-tied"));
  const ModelWeights& w = tied.model->weights();
  CHECK(&w.output() == &w.token_embd());
  LoadedModel untied = load_model(hf_tiny_dir("llama-tiny"));
  CHECK(&untied.model->weights().output() != &untied.model->weights().token_embd());
  // Three f32 matrices fewer: [320, 64] not stored twice.
  CHECK(untied.model->weights().resident_bytes() - w.resident_bytes() == 320u * 64 * 4);

  CpuBackend backend;
  auto source = open_hf_model(hf_tiny_dir("llama-tiny")).value();
  CHECK_THROWS_AS(ModelWeights::load(backend, *source, {0, 4}), Error);
  CHECK_THROWS_AS(ModelWeights::load(backend, *source, {2, 2}), Error);
  // A later stage of a tied model uploads token_embd as its output projection.
  auto tied_source = open_hf_model(hf_tiny_dir("llama-tiny-tied")).value();
  const ModelWeights last = ModelWeights::load(backend, *tied_source, {2, 3});
  CHECK(!last.has_embedding());
  CHECK(last.has_output());
  CHECK(last.output().rows() == 320);
}
