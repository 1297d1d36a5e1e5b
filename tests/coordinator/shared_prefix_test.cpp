// A job whose requests share a 208-token prefix: with prefix caching, the requests after
// the first reuse the shared blocks instead of computing them, and the tokens are the
// same as without it.
#include <doctest/doctest.h>

#include <map>

#include "common/synthetic/model_shapes.h"
#include "common/synthetic/random_model_source.h"
#include "coordinator/local_pipeline.h"
#include "coordinator/scheduler_actor.h"

namespace conveyor {
namespace {

struct SharedPrefixRun {
  std::map<std::uint64_t, std::vector<std::int32_t>> tokens;
  EngineStats stats;
};

SharedPrefixRun run_shared_prefix_job(const ModelSource& source, bool prefix_caching) {
  constexpr std::int64_t kBlocks = 128;
  LocalPipelineOptions pipeline_options;
  pipeline_options.backend.threads = 2;
  pipeline_options.kv = {kBlocks, 16};
  LocalPipeline pipeline(source, pipeline_options);
  SchedulerActorOptions options;
  options.scheduler.num_blocks = kBlocks;
  options.scheduler.block_size = 16;
  options.scheduler.max_sequences = 8;
  options.scheduler.max_step_tokens = 256;
  options.scheduler.prefix_caching = prefix_caching;
  options.vocab_size = source.spec().vocab_size;
  options.context_limit = kBlocks * 16;
  SchedulerActor actor(pipeline, options);

  Channel<EngineRequest> requests;
  for (std::uint64_t i = 0; i < 8; ++i) {
    EngineRequest r;
    r.key = i;
    for (std::int32_t t = 0; t < 208; ++t)  // the shared prefix: 13 full blocks
      r.prompt.push_back((t * 29 + 5) % 240 + 4);
    for (std::int32_t t = 0; t < 11; ++t)  // each request's own question
      r.prompt.push_back(static_cast<std::int32_t>((t * 7 + i * 13) % 240 + 4));
    r.sampling.temperature = 0;
    r.sampling.ignore_eos = true;
    r.sampling.max_tokens = 8;
    requests.send(std::move(r));
  }
  requests.close();
  SharedPrefixRun run;
  actor.run(requests, [&](EngineResult result) {
    REQUIRE(result.status.ok());
    run.tokens[result.key] = result.choices.at(0).tokens;
  });
  run.stats = actor.stats();
  return run;
}

TEST_CASE("a job sharing a 208-token prefix computes it once, with the same tokens") {
  Expected<ModelShape> shape = model_shape("tiny");
  REQUIRE(shape.ok());
  RandomModelOptions model_options;
  model_options.dtype = DType::kF32;
  model_options.seed = 5;
  model_options.max_positions = 4096;
  model_options.threads = 2;
  const auto source = make_random_model(*shape, model_options);

  const SharedPrefixRun cached = run_shared_prefix_job(*source, true);
  const SharedPrefixRun computed = run_shared_prefix_job(*source, false);
  REQUIRE(cached.tokens.size() == 8);
  CHECK(cached.tokens == computed.tokens);

  // The later requests find the 13 shared blocks; one admitted into the same step as
  // the first (the step's token budget has room left) computes them alongside it, before
  // they are registered.
  CHECK(cached.stats.prefix_hit_tokens >= 6 * 208);
  CHECK(cached.stats.prefix_hit_tokens % 16 == 0);  // whole blocks
  CHECK(computed.stats.prefix_hit_tokens == 0);
  // Every prompt position is either computed or reused.
  CHECK(cached.stats.prefill_tokens + cached.stats.prefix_hit_tokens ==
        computed.stats.prefill_tokens);
  const double hit_rate = static_cast<double>(cached.stats.prefix_hit_tokens) /
                          static_cast<double>(cached.stats.prefix_queried_tokens);
  MESSAGE("prefix cache: " << cached.stats.prefix_hit_tokens << " of "
                           << cached.stats.prefix_queried_tokens << " prompt tokens reused ("
                           << hit_rate * 100 << "%), prefill " << cached.stats.prefill_tokens
                           << " tokens instead of " << computed.stats.prefill_tokens);
}

}  // namespace
}  // namespace conveyor
