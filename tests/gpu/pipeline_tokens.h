// Tokens a whole pipeline generates (LocalPipeline and the scheduler actor, as `conveyor
// run` drives them), for the GPU tests that compare engines end to end.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/model_source.h"
#include "coordinator/local_pipeline.h"
#include "coordinator/scheduler_actor.h"

namespace conveyor::testing {

// Each prompt's generated tokens: `sampling` for every request (exactly max_tokens of them,
// past end-of-sequence), request i seeded with 1000 + i. The backend's name goes to
// `backend_name` when given.
inline std::vector<std::vector<std::int32_t>> pipeline_tokens(
    const ModelSource& source, const std::vector<std::vector<std::int32_t>>& prompts,
    const LocalPipelineOptions& pipeline_options, const SamplingParams& sampling,
    std::string* backend_name = nullptr) {
  LocalPipeline pipeline(source, pipeline_options);
  if (backend_name != nullptr) *backend_name = pipeline.backend_name();
  SchedulerActorOptions options;
  options.scheduler = {pipeline_options.kv.num_blocks, 16, 64, 512, false};
  options.vocab_size = source.spec().vocab_size;
  options.context_limit = source.spec().max_positions;
  SchedulerActor actor(pipeline, options);
  Channel<EngineRequest> requests;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    EngineRequest r;
    r.key = i;
    r.prompt = prompts[i];
    r.sampling = sampling;
    r.sampling.seed = 1000 + i;
    r.sampling.ignore_eos = true;
    requests.send(std::move(r));
  }
  requests.close();
  std::vector<std::vector<std::int32_t>> got(prompts.size());
  actor.run(requests, [&](EngineResult result) {
    REQUIRE(result.status.ok());
    got[result.key] = result.choices.at(0).tokens;
  });
  return got;
}

}  // namespace conveyor::testing
