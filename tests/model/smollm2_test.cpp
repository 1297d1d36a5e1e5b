// The real default model, when installed: SmolLM2-135M-Instruct (GGUF Q4_1, llama
// architecture with interleaved RoPE pairs) continues the reference prompts exactly as
// transformers did through the same GGUF file. Skipped when the model is absent.
#include <doctest/doctest.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/loader/open_model.h"
#include "common/model_registry.h"
#include "common/tokenizer/tokenizer.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/model/model_fixture.h"
#include "worker/generator.h"

using namespace conveyor;
using namespace conveyor::testing;

TEST_CASE("SmolLM2-135M GGUF greedy continuations match transformers, batched") {
  const auto path = resolve_model_path("smollm2-135m-instruct");
  if (!path.ok()) {
    MESSAGE("skipped: " << path.status().to_string());
    return;
  }
  LoadedModel m = load_model(*path, /*threads=*/2, /*block_size=*/16, /*num_blocks=*/128);
  CHECK(m.source->spec().rope_pairing == RopePairing::kInterleaved);

  std::ifstream in(std::string(CONVEYOR_FIXTURES_DIR) + "/smollm2/reference.json");
  const auto reference = nlohmann::json::parse(in);
  std::vector<GenerationRequest> requests;
  std::vector<std::vector<std::int32_t>> expected;
  for (const auto& c : reference.at("cases")) {
    GenerationRequest r;
    r.prompt = c.at("input_ids").get<std::vector<std::int32_t>>();
    r.params.temperature = 0;
    r.params.ignore_eos = true;  // the reference ran past the end of each answer
    r.params.max_tokens = reference.at("new_tokens").get<std::int32_t>();
    requests.push_back(std::move(r));
    expected.push_back(c.at("greedy_new_tokens").get<std::vector<std::int32_t>>());
  }
  Generator generator(*m.model, nullptr);
  const auto results = generator.run(requests);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    CAPTURE(i);
    // How far the continuation agrees, so that a mismatch says how many tokens matched.
    std::size_t matched = 0;
    while (matched < expected[i].size() && matched < results[i].tokens.size() &&
           results[i].tokens[matched] == expected[i][matched]) {
      ++matched;
    }
    CHECK_MESSAGE(matched == expected[i].size(),
                  "matched " << matched << " of " << expected[i].size() << " tokens");
  }
  const GeneratorStats& stats = generator.stats();
  MESSAGE("SmolLM2-135M, batch " << requests.size() << ": " << stats.generated_tokens
                                 << " tokens in " << stats.seconds << " s, "
                                 << static_cast<double>(stats.generated_tokens) / stats.seconds
                                 << " tok/s including prefill");
}

TEST_CASE("a step that throws leaves the KV cache as it found it") {
  const auto path = resolve_model_path("smollm2-135m-instruct");
  if (!path.ok()) {
    MESSAGE("skipped: " << path.status().to_string());
    return;
  }
  LoadedModel m = load_model(*path, /*threads=*/2, /*block_size=*/16, /*num_blocks=*/32);
  auto tokenizer = std::make_shared<Tokenizer>(*m.source->tokenizer());
  Generator generator(*m.model, tokenizer);

  GenerationRequest r;
  r.prompt = tokenizer->encode("Once upon a time", /*add_special=*/false);
  r.params.temperature = 0;
  r.params.max_tokens = 8;
  r.params.ignore_eos = true;
  const std::vector<GenerationRequest> requests = {r, r};
  // The text callback stands for any failure inside a step: the first text throws.
  CHECK_THROWS_AS(generator.run(requests,
                                [](std::size_t, std::string_view) {
                                  throw std::runtime_error("consumer failed");
                                }),
                  std::runtime_error);
  CHECK(m.cache->free_blocks() == 32);
  // The same generator and cache run normally afterwards.
  const auto results = generator.run(requests);
  CHECK(results[0].tokens.size() == 8);
  CHECK(results[0].tokens == results[1].tokens);
  CHECK(m.cache->free_blocks() == 32);
}
