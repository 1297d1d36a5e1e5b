// The CUDA backend on whole models: the hf-tiny fixtures in fp32 mode against
// transformers' logits and greedy tokens, and SmolLM2 (its Q4_1 weights widened to
// bf16) against transformers' greedy continuations. Skipped without a GPU; the SmolLM2
// case also without the model installed.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/loader/open_model.h"
#include "common/model_registry.h"
#include "coordinator/local_pipeline.h"
#include "coordinator/scheduler_actor.h"
#include "tests/gpu/cuda_twin.h"
#include "tests/model/model_fixture.h"

using namespace conveyor;
using namespace conveyor::testing;

TEST_CASE("hf-tiny fixtures: fp32 logits and greedy tokens on the GPU match transformers" *
          doctest::skip(no_gpu())) {
  for (const std::string name : {"llama-tiny", "llama-tiny-tied", "llama3-tiny-ropescaling",
                                 "qwen2-tiny", "mistral-tiny-swa"}) {
    CAPTURE(name);
    LoadedModel m = load_model(hf_tiny_dir(name), 1, 16, 64, {}, gpu_backend(0.05));
    const auto cases = load_reference(name);
    const std::int64_t vocab = m.model->spec().vocab_size;
    float worst = 0;
    for (std::size_t c = 0; c < cases.size(); ++c) {
      const ReferenceCase& rc = cases[c];
      const auto id = static_cast<SequenceId>(c);
      REQUIRE(m.blocks->reserve(
          id, static_cast<std::int64_t>(rc.input_ids.size() + rc.greedy_new_tokens.size())));
      std::vector<SequenceStep> prefill{
          {rc.input_ids, 0, m.blocks->block_table(id), LogitsWanted::kAll}};
      StepResult out = m.model->forward(prefill);
      for (std::size_t p = 0; p < rc.logits.size(); ++p) {
        worst = std::max(worst,
                         max_abs_error(out.row(static_cast<std::int64_t>(p), vocab), rc.logits[p]));
      }
      // Greedy decode through the paged cache, one token per step.
      std::vector<std::int32_t> generated;
      auto last = out.row(static_cast<std::int64_t>(rc.input_ids.size()) - 1, vocab);
      std::int64_t position = static_cast<std::int64_t>(rc.input_ids.size());
      for (std::size_t t = 0; t < rc.greedy_new_tokens.size(); ++t) {
        const auto token =
            static_cast<std::int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
        generated.push_back(token);
        if (t + 1 == rc.greedy_new_tokens.size()) break;
        const std::vector<std::int32_t> next{token};
        std::vector<SequenceStep> decode{
            {next, position++, m.blocks->block_table(id), LogitsWanted::kLast}};
        out = m.model->forward(decode);
        last = out.row(0, vocab);
      }
      CHECK(generated == rc.greedy_new_tokens);
      m.blocks->release(id);
    }
    CHECK(worst < 1e-4f);
    MESSAGE(name << ": max abs logit error " << worst);
  }
}

TEST_CASE("SmolLM2 in bf16 on the GPU: greedy continuations agree with transformers" *
          doctest::skip(no_gpu())) {
  const auto path = resolve_model_path("smollm2-135m-instruct");
  if (!path.ok()) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  auto source = open_model_source(*path).value();
  std::ifstream in(std::string(CONVEYOR_FIXTURES_DIR) + "/smollm2/reference.json");
  const auto json = nlohmann::json::parse(in);
  const auto new_tokens = json.at("new_tokens").get<std::int32_t>();

  // bf16 mode: bf16 weights with the K/V cache in f32, then in bf16 too.
  for (const DType kv_dtype : {DType::kF32, DType::kBF16}) {
    CAPTURE(dtype_name(kv_dtype));
    LocalPipelineOptions pipeline_options;
    pipeline_options.backend.kind = BackendKind::kCuda;
    pipeline_options.backend.gpu_memory_fraction = 0.1;
    pipeline_options.kv = {256, 16};
    pipeline_options.kv.dtype = kv_dtype;
    LocalPipeline pipeline(*source, pipeline_options);
    SchedulerActorOptions options;
    options.scheduler = {256, 16, 64, 512, false};
    options.vocab_size = source->spec().vocab_size;
    options.context_limit = source->spec().max_positions;
    SchedulerActor actor(pipeline, options);

    Channel<EngineRequest> requests;
    std::vector<std::vector<std::int32_t>> expected;
    for (const auto& c : json.at("cases")) {
      EngineRequest r;
      r.key = expected.size();
      r.prompt = c.at("input_ids").get<std::vector<std::int32_t>>();
      r.sampling.temperature = 0;
      r.sampling.ignore_eos = true;
      r.sampling.max_tokens = new_tokens;
      expected.push_back(c.at("greedy_new_tokens").get<std::vector<std::int32_t>>());
      requests.send(std::move(r));
    }
    requests.close();
    std::vector<std::vector<std::int32_t>> got(expected.size());
    actor.run(requests, [&](EngineResult result) {
      REQUIRE(result.status.ok());
      got[result.key] = result.choices.at(0).tokens;
    });
    std::size_t agree_16 = 0;
    std::string prefixes;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      std::size_t same = 0;
      while (same < expected[i].size() && same < got[i].size() && got[i][same] == expected[i][same])
        ++same;
      if (same >= 16) ++agree_16;
      prefixes += ' ';
      prefixes += std::to_string(same);
    }
    MESSAGE("SmolLM2 bf16 weights, "
            << dtype_name(kv_dtype) << " K/V on " << pipeline.backend_name() << ": " << agree_16
            << " of " << expected.size()
            << " prompts agree for 16+ tokens; tokens agreeing per prompt:" << prefixes);
    // bf16 mode (bf16 weights and activations into every GEMM) must agree on 90% of
    // the prompts. A bf16 cache rounds every key and value as well, which flips a
    // near-tie on one or two of these ten prompts (docs/performance.md has the
    // figures); it is held to 70%.
    const double wanted = kv_dtype == DType::kF32 ? 0.9 : 0.7;
    CHECK(static_cast<double>(agree_16) >= wanted * static_cast<double>(expected.size()));
  }
}
