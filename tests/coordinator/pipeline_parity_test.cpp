// The coordinator's engine loop over in-process pipeline stages, on the real default
// model when installed: greedy continuations equal transformers' reference whatever
// the number of stages, with continuous or static batching, and under a KV budget
// small enough to force preemption. Skipped when the model is absent.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/loader/open_model.h"
#include "common/model_registry.h"
#include "coordinator/local_pipeline.h"
#include "coordinator/scheduler_actor.h"

namespace conveyor {
namespace {

struct Reference {
  std::vector<std::vector<std::int32_t>> prompts;
  std::vector<std::vector<std::int32_t>> expected;
  std::int32_t new_tokens = 0;
};

Reference load_reference() {
  std::ifstream in(std::string(CONVEYOR_FIXTURES_DIR) + "/smollm2/reference.json");
  const auto json = nlohmann::json::parse(in);
  Reference r;
  r.new_tokens = json.at("new_tokens").get<std::int32_t>();
  for (const auto& c : json.at("cases")) {
    r.prompts.push_back(c.at("input_ids").get<std::vector<std::int32_t>>());
    r.expected.push_back(c.at("greedy_new_tokens").get<std::vector<std::int32_t>>());
  }
  return r;
}

struct RunShape {
  std::int64_t stages = 1;
  bool static_batching = false;
  std::int64_t num_blocks = 128;
  std::int64_t max_step_tokens = 256;
  std::int64_t max_sequences = 64;
  bool prefix_caching = false;
};

struct RunOutcome {
  std::vector<std::vector<std::int32_t>> tokens;  // by request key
  EngineStats stats;
};

RunOutcome run_reference(const ModelSource& source, const Reference& ref, const RunShape& shape) {
  LocalPipelineOptions pipeline_options;
  pipeline_options.stages = shape.stages;
  pipeline_options.backend.threads = 2;
  pipeline_options.kv = {shape.num_blocks, 16};
  LocalPipeline pipeline(source, pipeline_options);

  SchedulerActorOptions options;
  options.scheduler = {shape.num_blocks, 16, shape.max_sequences, shape.max_step_tokens,
                       shape.static_batching};
  options.scheduler.prefix_caching = shape.prefix_caching;
  options.vocab_size = source.spec().vocab_size;
  options.context_limit = source.spec().max_positions;
  SchedulerActor actor(pipeline, options);

  Channel<EngineRequest> requests;
  for (std::size_t i = 0; i < ref.prompts.size(); ++i) {
    EngineRequest r;
    r.key = i;
    r.prompt = ref.prompts[i];
    r.sampling.temperature = 0;
    r.sampling.ignore_eos = true;
    r.sampling.max_tokens = ref.new_tokens;
    requests.send(std::move(r));
  }
  requests.close();
  RunOutcome outcome;
  outcome.tokens.resize(ref.prompts.size());
  actor.run(requests, [&](EngineResult result) {
    REQUIRE(result.status.ok());
    REQUIRE(result.choices.size() == 1);
    outcome.tokens[result.key] = result.choices[0].tokens;
  });
  outcome.stats = actor.stats();
  return outcome;
}

void check_matches(const RunOutcome& outcome, const Reference& ref) {
  for (std::size_t i = 0; i < ref.expected.size(); ++i) {
    CAPTURE(i);
    std::size_t matched = 0;
    while (matched < ref.expected[i].size() && matched < outcome.tokens[i].size() &&
           outcome.tokens[i][matched] == ref.expected[i][matched]) {
      ++matched;
    }
    CHECK_MESSAGE(matched == ref.expected[i].size(),
                  "matched " << matched << " of " << ref.expected[i].size() << " tokens");
  }
}

std::unique_ptr<ModelSource> open_default_model() {
  const auto path = resolve_model_path("smollm2-135m-instruct");
  if (!path.ok()) return nullptr;
  auto source = open_model_source(*path);
  REQUIRE(source.ok());
  return std::move(source).value();
}

TEST_CASE("greedy outputs are identical for 1, 2 and 3 pipeline stages and static batching") {
  auto source = open_default_model();
  if (!source) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  const Reference ref = load_reference();
  for (const RunShape shape :
       {RunShape{1, false}, RunShape{2, false}, RunShape{3, false}, RunShape{1, true}}) {
    CAPTURE(shape.stages);
    CAPTURE(shape.static_batching);
    const RunOutcome outcome = run_reference(*source, ref, shape);
    check_matches(outcome, ref);
    CHECK(outcome.stats.finished == static_cast<std::int64_t>(ref.prompts.size()));
    CHECK(outcome.stats.generated_tokens ==
          static_cast<std::int64_t>(ref.prompts.size()) * ref.new_tokens);
    MESSAGE("stages " << shape.stages
                      << std::string(shape.static_batching ? " static" : " continuous") << ": "
                      << outcome.stats.steps << " steps, " << outcome.stats.seconds << " s");
  }
}

TEST_CASE("a KV cache too small for the batch preempts by recompute and still matches") {
  auto source = open_default_model();
  if (!source) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  const Reference ref = load_reference();
  // 10 sequences of up to ~90 positions (6 blocks each) in 16 blocks.
  const RunOutcome outcome = run_reference(*source, ref, RunShape{2, false, 16, 64, 8});
  check_matches(outcome, ref);
  CHECK(outcome.stats.preemptions > 0);
  MESSAGE("preemptions: " << outcome.stats.preemptions);
}

TEST_CASE("prefix caching: prompts sharing the system prompt reuse its blocks, same tokens") {
  auto source = open_default_model();
  if (!source) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  const Reference ref = load_reference();
  for (const std::int64_t stages : {1, 2}) {
    CAPTURE(stages);
    // A budget of 64 tokens per step admits the prompts a few at a time, so later ones
    // find the system prompt's blocks computed; 24 blocks also force preemptions,
    // which give back shared blocks without freeing them.
    RunShape shape{stages, false, 24, 64, 8};
    shape.prefix_caching = true;
    const RunOutcome outcome = run_reference(*source, ref, shape);
    check_matches(outcome, ref);
    CHECK(outcome.stats.prefix_hit_tokens > 0);
    MESSAGE("prefix cache: " << outcome.stats.prefix_hit_tokens << " of "
                             << outcome.stats.prefix_queried_tokens << " prompt tokens reused, "
                             << outcome.stats.preemptions << " preemptions");
  }
}

}  // namespace
}  // namespace conveyor
