// The real default model, when installed: SmolLM2-135M-Instruct (GGUF Q4_1, llama
// architecture with interleaved RoPE pairs) continues the reference prompts exactly as
// transformers did through the same GGUF file. Skipped when the model is absent.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/loader/open_model.h"
#include "common/model_registry.h"
#include "kernels/cpu/cpu_backend.h"
#include "worker/generator.h"

using namespace conveyor;

TEST_CASE("SmolLM2-135M GGUF greedy continuations match transformers, batched") {
  const auto path = resolve_model_path("smollm2-135m-instruct");
  if (!path.ok()) {
    MESSAGE("skipped: " << path.status().to_string());
    return;
  }
  auto source = open_model_source(*path).value();
  const ModelSpec& spec = source->spec();
  CHECK(spec.rope_pairing == RopePairing::kInterleaved);
  CpuBackend backend;
  KvCacheConfig kv;
  kv.num_layers = spec.num_layers;
  kv.num_blocks = 128;
  kv.block_size = 16;
  kv.kv_dim = spec.kv_dim();
  KvCache cache(backend, kv);
  LlamaModel model(backend, ModelWeights::load(backend, *source, LayerRange::all(spec)), cache);

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
  Generator generator(model, nullptr);
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
