// The real default model, when installed: SmolLM2-135M-Instruct (GGUF Q4_1, llama
// architecture with interleaved RoPE pairs) continues the reference prompts exactly as
// transformers did through the same GGUF file. Skipped when the model is absent.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/model_registry.h"
#include "common/model_source.h"
#include "kernels/cpu/cpu_backend.h"
#include "worker/greedy_generate.h"

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
  std::vector<std::vector<std::int32_t>> prompts;
  std::vector<std::vector<std::int32_t>> expected;
  for (const auto& c : reference.at("cases")) {
    prompts.push_back(c.at("input_ids").get<std::vector<std::int32_t>>());
    expected.push_back(c.at("greedy_new_tokens").get<std::vector<std::int32_t>>());
  }
  GreedyOptions options;
  options.max_new_tokens = reference.at("new_tokens").get<std::int64_t>();  // eos ignored
  const GreedyResult result = generate_greedy(model, prompts, options);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    CAPTURE(i);
    CHECK(result.tokens[i] == expected[i]);
  }
  const double prefill_rate =
      static_cast<double>(result.stats.prompt_tokens) / result.stats.prefill_seconds;
  MESSAGE("SmolLM2-135M f32, batch " << prompts.size() << ": prefill " << prefill_rate
                                     << " tok/s, decode " << result.stats.decode_tokens_per_second()
                                     << " tok/s");
}
