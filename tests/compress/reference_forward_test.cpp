// The reference forward that compression calibrates with computes what the engine
// computes: its logits match the engine's (CPU backend) and transformers' (the hf-tiny
// fixtures' reference.json) for every architecture variant the fixtures cover, plus
// GGUF-style interleaved RoPE with frequency factors; sequences run together do not
// see each other.
#include <doctest/doctest.h>

#include "common/loader/open_model.h"
#include "compress/reference_forward.h"
#include "tests/compress/compress_test_util.h"
#include "tests/model/model_fixture.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

constexpr float kTolerance = 1e-4f;

}  // namespace

TEST_CASE("reference logits match the engine's and transformers' on the hf-tiny fixtures") {
  ThreadPool pool(2);
  for (const std::string name : {"llama-tiny", "llama-tiny-tied", "llama3-tiny-ropescaling",
                                 "mistral-tiny-swa", "qwen2-tiny"}) {
    CAPTURE(name);
    const auto source = open_model_source(hf_tiny_dir(name)).value();
    const std::int64_t vocab = source->spec().vocab_size;
    for (const ReferenceCase& c : load_reference(name)) {
      CAPTURE(c.input_ids.size());
      const std::vector<float> ref = compress::reference_logits(*source, c.input_ids, pool);
      const std::vector<float> engine = engine_logits(*source, c.input_ids);
      CHECK(max_abs_difference(ref, engine) < kTolerance);
      float worst = 0;
      for (std::size_t p = 0; p < c.logits.size(); ++p) {
        worst = std::max(worst,
                         max_abs_difference(std::span(ref).subspan(p * vocab, vocab), c.logits[p]));
      }
      CHECK(worst < kTolerance);
    }
  }
}

TEST_CASE("reference logits match the engine's with interleaved RoPE and frequency factors") {
  ThreadPool pool(2);
  auto inner = random_model(wide_shape(), DType::kBF16);
  ModelSpec spec = inner->spec();
  spec.rope_pairing = RopePairing::kInterleaved;
  spec.rope_freq_factors.assign(static_cast<std::size_t>(spec.head_dim / 2), 1.0f);
  for (std::size_t i = 0; i < spec.rope_freq_factors.size(); ++i)
    spec.rope_freq_factors[i] = 1.0f + 0.5f * static_cast<float>(i);
  const WithSpec source(std::move(inner), spec);
  const std::vector<std::int32_t> tokens = {1, 17, 42, 200, 3, 99, 150, 7, 8, 300, 12};
  const std::vector<float> ref = compress::reference_logits(source, tokens, pool);
  const std::vector<float> engine = engine_logits(source, tokens);
  CHECK(max_abs_difference(ref, engine) < kTolerance * std::max(1.0f, max_abs(engine)));
}

TEST_CASE("sequences run together give each the logits it has alone") {
  ThreadPool pool(2);
  const auto source = random_model(tiny_shape(), DType::kF32);
  const std::vector<std::int32_t> a = {5, 6, 7, 8, 9};
  const std::vector<std::int32_t> b = {200, 100, 50};
  std::vector<std::int32_t> both = a;
  both.insert(both.end(), b.begin(), b.end());
  const compress::ReferenceForward forward(source->spec(), pool, {5, 3});
  std::vector<float> hidden = forward.embed(source->require("token_embd.weight"), both);
  for (std::int64_t l = 0; l < source->spec().num_layers; ++l)
    forward.layer(compress::load_f32_layer(*source, l), hidden, nullptr);
  const std::vector<float> together = forward.logits(hidden, source->require("output_norm.weight"),
                                                     source->require("token_embd.weight"));
  const std::int64_t vocab = source->spec().vocab_size;
  const std::vector<float> alone = compress::reference_logits(*source, b, pool);
  CHECK(max_abs_difference(std::span(together).subspan(static_cast<std::size_t>(5 * vocab)),
                           alone) < 1e-6f);
}

TEST_CASE("the reference forward refuses what it cannot run") {
  ThreadPool pool(1);
  const auto source = random_model(tiny_shape(), DType::kF32);
  CHECK_THROWS_AS(compress::ReferenceForward(source->spec(), pool, {}), Error);
  CHECK_THROWS_AS(compress::ReferenceForward(source->spec(), pool, {0}), Error);
  CHECK_THROWS_AS(compress::ReferenceForward(source->spec(), pool, {100000}), Error);
  const compress::ReferenceForward forward(source->spec(), pool, {2});
  const std::vector<std::int32_t> outside = {1, 256};
  CHECK_THROWS_AS(forward.embed(source->require("token_embd.weight"), outside), Error);
}
