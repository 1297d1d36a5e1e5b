// The engine loop (SchedulerActor over an in-process LocalPipeline) on the hf-tiny
// fixtures: batching, chunked prefill, pipeline stages and preemption must not change
// what a sequence generates; seeds, choices, stop conditions, refusals and failed
// steps behave as documented. Streamed text is checked on the default model when it
// is installed.
#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/loader/open_model.h"
#include "common/model_registry.h"
#include "coordinator/local_pipeline.h"
#include "coordinator/scheduler_actor.h"
#include "tests/model/model_fixture.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

const char* const kFixtures[] = {"llama-tiny", "llama-tiny-tied", "llama3-tiny-ropescaling",
                                 "qwen2-tiny", "mistral-tiny-swa"};

// The reference prompts have 5, 24 and 40 tokens; 16 greedy tokens follow each.
constexpr std::int64_t kReferencePromptTokens = 5 + 24 + 40;

struct EngineShape {
  std::int64_t stages = 1;
  std::int64_t num_blocks = 64;
  std::int64_t block_size = 16;
  std::int64_t max_step_tokens = 512;
  std::int64_t max_sequences = 64;
};

std::unique_ptr<ModelSource> open_fixture(const std::string& name) {
  return open_model_source(hf_tiny_dir(name)).value();
}

LocalPipelineOptions pipeline_options(const EngineShape& shape) {
  LocalPipelineOptions options;
  options.stages = shape.stages;
  options.backend.threads = 2;
  options.kv = {shape.num_blocks, shape.block_size};
  return options;
}

SchedulerActorOptions actor_options(const ModelSource& source, const EngineShape& shape,
                                    std::shared_ptr<const Tokenizer> tokenizer = nullptr) {
  SchedulerActorOptions options;
  options.scheduler.num_blocks = shape.num_blocks;
  options.scheduler.block_size = shape.block_size;
  options.scheduler.max_sequences = shape.max_sequences;
  options.scheduler.max_step_tokens = shape.max_step_tokens;
  options.vocab_size = source.spec().vocab_size;
  options.context_limit = source.spec().max_positions;
  options.eos_ids = source.spec().eos_token_ids;
  if (tokenizer != nullptr) {
    for (std::int32_t id : tokenizer->end_of_generation_ids())
      options.eos_ids.push_back(id);
  }
  options.tokenizer = std::move(tokenizer);
  return options;
}

// A pipeline and the engine loop over it, kept across runs as a serving process keeps
// them, so that each run also checks that the last one left nothing behind.
struct Engine {
  Engine(const ModelSource& source, const EngineShape& shape,
         std::shared_ptr<const Tokenizer> tokenizer = nullptr)
      : pipeline(source, pipeline_options(shape)),
        actor(pipeline, actor_options(source, shape, std::move(tokenizer))) {}

  LocalPipeline pipeline;
  SchedulerActor actor;
};

// What one run produced: the results in request order (keys are indices), and the
// counters of this run alone (the actor's accumulate over runs).
struct EngineRun {
  std::vector<EngineResult> results;
  EngineStats stats;
};

EngineStats stats_since(const EngineStats& before, const EngineStats& after) {
  EngineStats run = after;
  run.steps -= before.steps;
  run.prefill_tokens -= before.prefill_tokens;
  run.decode_tokens -= before.decode_tokens;
  run.generated_tokens -= before.generated_tokens;
  run.preemptions -= before.preemptions;
  run.finished -= before.finished;
  run.failed -= before.failed;
  return run;
}

// Runs `requests` to completion; every request must get exactly one result.
EngineRun run_requests(SchedulerActor& actor, std::vector<EngineRequest> requests,
                       const SchedulerActor::TextCallback& on_text = {}) {
  const EngineStats before = actor.stats();
  const auto start = SteadyClock::now();
  Channel<EngineRequest> channel;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    requests[i].key = i;
    requests[i].submitted = start;
    channel.send(std::move(requests[i]));
  }
  channel.close();
  std::vector<std::optional<EngineResult>> by_key(requests.size());
  actor.run(
      channel,
      [&](EngineResult result) {
        REQUIRE(result.key < by_key.size());
        REQUIRE_FALSE(by_key[result.key].has_value());
        by_key[result.key] = std::move(result);
      },
      {}, on_text);
  EngineRun run;
  for (std::size_t i = 0; i < by_key.size(); ++i) {
    CAPTURE(i);
    REQUIRE(by_key[i].has_value());
    run.results.push_back(std::move(*by_key[i]));
  }
  run.stats = stats_since(before, actor.stats());
  return run;
}

EngineRequest greedy_request(const ReferenceCase& c, std::int32_t max_tokens = 16) {
  EngineRequest r;
  r.prompt = c.input_ids;
  r.sampling.temperature = 0;
  r.sampling.max_tokens = max_tokens;
  r.sampling.ignore_eos = true;
  return r;
}

std::vector<EngineRequest> greedy_requests(const std::vector<ReferenceCase>& cases) {
  std::vector<EngineRequest> requests;
  for (const ReferenceCase& c : cases)
    requests.push_back(greedy_request(c));
  return requests;
}

EngineRequest sampled_request(const ReferenceCase& c, std::uint64_t seed, std::int32_t n = 1) {
  EngineRequest r;
  r.prompt = c.input_ids;
  r.sampling.temperature = 0.9f;
  r.sampling.top_k = 50;
  r.sampling.top_p = 0.95f;
  r.sampling.max_tokens = 12;
  r.sampling.ignore_eos = true;
  r.sampling.seed = seed;
  r.n = n;
  return r;
}

// The tokens of the only choice of a result that must have succeeded.
const std::vector<std::int32_t>& only_tokens(const EngineResult& result) {
  REQUIRE_MESSAGE(result.status.ok(), result.status.to_string());
  REQUIRE(result.choices.size() == 1);
  return result.choices[0].tokens;
}

// Forwards to a pipeline, but sends step `failing_step` with its block tables cut
// short, which the stages' model refuses: a step that fails inside a stage.
class FailingStepRunner final : public StepRunner {
 public:
  FailingStepRunner(StepRunner& inner, std::uint64_t failing_step)
      : inner_(inner), failing_step_(failing_step) {}

  int depth() const override { return inner_.depth(); }
  void submit(std::shared_ptr<const StepPlan> plan) override {
    if (plan->step == failing_step_) {
      auto broken = std::make_shared<StepPlan>(*plan);
      for (PlannedSequence& s : broken->sequences)
        s.block_table.clear();
      plan = std::move(broken);
    }
    inner_.submit(std::move(plan));
  }
  StepOutput next_result() override { return inner_.next_result(); }

 private:
  StepRunner& inner_;
  std::uint64_t failing_step_;
};

}  // namespace

TEST_CASE("greedy continuations decoded through the KV cache match transformers") {
  for (const char* name : kFixtures) {
    CAPTURE(name);
    const auto cases = load_reference(name);
    const auto source = open_fixture(name);
    for (const std::int64_t stages : {1, 2}) {
      CAPTURE(stages);
      Engine engine(*source, EngineShape{stages});
      // Alone: one prefill step, then one decode step per further token.
      for (const ReferenceCase& c : cases) {
        const EngineRun alone = run_requests(engine.actor, {greedy_request(c)});
        CHECK(only_tokens(alone.results[0]) == c.greedy_new_tokens);
        CHECK(alone.stats.steps == 16);
      }
      // Together: on one stage, still one step per token for the whole batch; on two,
      // the batch is split into a micro-batch per stage.
      const EngineRun together = run_requests(engine.actor, greedy_requests(cases));
      REQUIRE(together.results.size() == cases.size());
      for (std::size_t i = 0; i < cases.size(); ++i) {
        CAPTURE(i);
        const EngineResult& r = together.results[i];
        CHECK(only_tokens(r) == cases[i].greedy_new_tokens);
        CHECK(r.choices[0].finish_reason == FinishReason::kLength);
        CHECK(r.prompt_tokens == static_cast<std::int64_t>(cases[i].input_ids.size()));
      }
      if (stages == 1) CHECK(together.stats.steps == 16);
      CHECK(together.stats.prefill_tokens == kReferencePromptTokens);
      CHECK(together.stats.decode_tokens == 3 * 15);  // every token but the last is fed back
      CHECK(together.stats.generated_tokens == 3 * 16);
      CHECK(together.stats.finished == 3);
      CHECK(together.stats.preemptions == 0);
      CHECK(together.stats.running == 0);
      CHECK(together.stats.waiting == 0);
    }
  }
}

TEST_CASE("chunked prefill and a small step budget give the same tokens") {
  const auto cases = load_reference("llama-tiny");
  const auto source = open_fixture("llama-tiny");
  for (const std::int64_t stages : {1, 2}) {
    CAPTURE(stages);
    EngineShape shape{stages};
    shape.max_step_tokens = 7;
    Engine engine(*source, shape);
    const EngineRun run = run_requests(engine.actor, greedy_requests(cases));
    for (std::size_t i = 0; i < cases.size(); ++i)
      CHECK(only_tokens(run.results[i]) == cases[i].greedy_new_tokens);
    CHECK(run.stats.steps > 16);
    CHECK(run.stats.prefill_tokens == kReferencePromptTokens);  // chunking prefills nothing twice
  }
}

TEST_CASE("preemption by recompute under KV pressure loses nothing") {
  const auto cases = load_reference("llama-tiny");
  const auto source = open_fixture("llama-tiny");
  for (const std::int64_t stages : {1, 2}) {
    CAPTURE(stages);
    // Prompts of 5, 24 and 40 tokens plus 16 new ones need 2, 3 and 4 blocks of 16;
    // with 4 blocks in all, growing sequences preempt the newest, which is recomputed.
    EngineShape shape{stages};
    shape.num_blocks = 4;
    Engine engine(*source, shape);
    const EngineRun run = run_requests(engine.actor, greedy_requests(cases));
    for (std::size_t i = 0; i < cases.size(); ++i)
      CHECK(only_tokens(run.results[i]) == cases[i].greedy_new_tokens);
    CHECK(run.stats.preemptions > 0);
    CHECK(run.stats.prefill_tokens > kReferencePromptTokens);  // the recomputed ones again
    // Every block came back: the longest sequence then takes the whole cache alone.
    const EngineRun after = run_requests(engine.actor, {greedy_request(cases[2])});
    CHECK(only_tokens(after.results[0]) == cases[2].greedy_new_tokens);
    CHECK(after.stats.preemptions == 0);
  }
}

TEST_CASE("a seeded sampled sequence does not depend on its batch or the pipeline") {
  const auto cases = load_reference("llama-tiny");
  const auto source = open_fixture("llama-tiny");
  Engine engine(*source, EngineShape{});
  const auto a = run_requests(engine.actor, {sampled_request(cases[2], 42)});
  const auto b = run_requests(
      engine.actor,
      {sampled_request(cases[0], 1), sampled_request(cases[2], 42), sampled_request(cases[1], 7)});
  const auto c = run_requests(engine.actor, {sampled_request(cases[2], 42)});
  const std::vector<std::int32_t>& tokens = only_tokens(a.results[0]);
  CHECK(tokens.size() == 12);
  CHECK(tokens == only_tokens(b.results[1]));
  CHECK(tokens == only_tokens(c.results[0]));
  CHECK(only_tokens(run_requests(engine.actor, {sampled_request(cases[2], 43)}).results[0]) !=
        tokens);

  // Two stages, a step budget that chunks the prefill and a cache that forces
  // recomputation: the draw is still a function of the seed and the position alone.
  EngineShape shape{2};
  shape.num_blocks = 4;
  shape.max_step_tokens = 7;
  Engine split(*source, shape);
  const auto d = run_requests(
      split.actor,
      {sampled_request(cases[0], 1), sampled_request(cases[2], 42), sampled_request(cases[1], 7)});
  CHECK(d.stats.preemptions > 0);
  for (std::size_t i = 0; i < 3; ++i)
    CHECK(only_tokens(d.results[i]) == only_tokens(b.results[i]));
}

TEST_CASE("stop tokens end a sequence and log-probs come with every token") {
  const auto cases = load_reference("llama-tiny");
  const auto source = open_fixture("llama-tiny");
  Engine engine(*source, EngineShape{});
  auto requests = greedy_requests(cases);
  const std::int32_t stop = cases[0].greedy_new_tokens[3];
  requests[0].sampling.stop_token_ids = {stop};
  requests[0].sampling.logprobs = true;
  requests[0].sampling.top_logprobs = 5;
  const EngineRun run = run_requests(engine.actor, requests);
  const EngineResult& result = run.results[0];
  const std::vector<std::int32_t>& tokens = only_tokens(result);
  const EngineChoice& choice = result.choices[0];
  CHECK(choice.finish_reason == FinishReason::kStop);
  REQUIRE(!tokens.empty());
  CHECK(tokens.back() == stop);
  CHECK(tokens.size() <= 4);
  // The stop token is the first occurrence of it: up to there, the greedy reference.
  CHECK(std::vector<std::int32_t>(cases[0].greedy_new_tokens.begin(),
                                  cases[0].greedy_new_tokens.begin() +
                                      static_cast<std::ptrdiff_t>(tokens.size())) == tokens);
  REQUIRE(choice.logprobs.size() == tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    REQUIRE(choice.logprobs[i].top_logprobs.size() == 5);
    // Greedy: the chosen token is the most likely one.
    CHECK(choice.logprobs[i].token == tokens[i]);
    CHECK(choice.logprobs[i].top_logprobs[0].token == tokens[i]);
    CHECK(*choice.logprobs[i].logprob ==
          doctest::Approx(choice.logprobs[i].top_logprobs[0].logprob));
    CHECK(*choice.logprobs[i].logprob <= 0.0f);
  }
  // The others asked for no log-probs and ran to their length.
  for (std::size_t i = 1; i < cases.size(); ++i) {
    CHECK(only_tokens(run.results[i]) == cases[i].greedy_new_tokens);
    CHECK(run.results[i].choices[0].logprobs.empty());
  }
}

TEST_CASE("a request that cannot run is refused alone; the others run") {
  const auto cases = load_reference("llama-tiny");
  const auto source = open_fixture("llama-tiny");
  EngineShape shape;
  shape.num_blocks = 4;
  Engine engine(*source, shape);
  const EngineRequest good = greedy_request(cases[0]);
  struct Refusal {
    EngineRequest request;
    ErrorCode code;
    std::string words;  // in the message
  };
  std::vector<Refusal> bad;
  EngineRequest r;
  r.sampling.temperature = 0;
  bad.push_back({r, ErrorCode::kInvalidArgument, "empty prompt"});
  r.prompt = {5, 400};  // the fixtures' vocabulary has 320 tokens
  bad.push_back({r, ErrorCode::kInvalidArgument, "outside the vocabulary"});
  r.prompt.assign(600, 5);  // the fixtures' context is 512
  bad.push_back({r, ErrorCode::kOutOfRange, "context"});
  r.prompt.assign(40, 5);
  r.sampling.max_tokens = 100;  // 140 tokens > 4 blocks of 16
  bad.push_back({r, ErrorCode::kInvalidArgument, "KV cache"});
  r.sampling.max_tokens = 4;
  r.n = 0;
  bad.push_back({r, ErrorCode::kInvalidArgument, "n must be at least 1"});
  r.n = 1;
  r.sampling.top_p = 0;
  bad.push_back({r, ErrorCode::kInvalidArgument, "top_p"});

  std::vector<EngineRequest> requests = {good};
  for (const Refusal& refusal : bad)
    requests.push_back(refusal.request);
  requests.push_back(good);
  const EngineRun run = run_requests(engine.actor, requests);
  CHECK(only_tokens(run.results.front()) == cases[0].greedy_new_tokens);
  CHECK(only_tokens(run.results.back()) == cases[0].greedy_new_tokens);
  for (std::size_t i = 0; i < bad.size(); ++i) {
    CAPTURE(bad[i].words);
    const EngineResult& result = run.results[i + 1];
    CHECK(result.status.code() == bad[i].code);
    CHECK_MESSAGE(result.status.message().find(bad[i].words) != std::string::npos,
                  result.status.message());
    CHECK(result.choices.empty());
    CHECK(result.prompt_tokens == static_cast<std::int64_t>(bad[i].request.prompt.size()));
  }
  CHECK(run.stats.failed == static_cast<std::int64_t>(bad.size()));
  CHECK(run.stats.finished == 2);
  // Nothing of the refused ones holds a block: the longest fitting sequence runs alone.
  const EngineRun after = run_requests(engine.actor, {greedy_request(cases[2])});
  CHECK(only_tokens(after.results[0]) == cases[2].greedy_new_tokens);
  CHECK(after.stats.preemptions == 0);
}

TEST_CASE("a request too long for the KV cache is refused while the batch around it completes") {
  const auto cases = load_reference("llama-tiny");
  const auto source = open_fixture("llama-tiny");
  EngineShape shape;
  shape.num_blocks = 4;
  Engine engine(*source, shape);
  // 40 + 24 = 64 tokens fill the 4 blocks exactly; one more token does not fit.
  EngineRequest fits = greedy_request(cases[2], 24);
  EngineRequest too_long = greedy_request(cases[2], 25);
  std::vector<EngineRequest> requests = greedy_requests(cases);
  requests.insert(requests.begin() + 1, too_long);
  requests.push_back(fits);
  const EngineRun run = run_requests(engine.actor, requests);
  const EngineResult& refused = run.results[1];
  CHECK(refused.status.code() == ErrorCode::kInvalidArgument);
  CHECK_MESSAGE(refused.status.message().find("KV cache") != std::string::npos,
                refused.status.message());
  CHECK(refused.choices.empty());
  CHECK(only_tokens(run.results[0]) == cases[0].greedy_new_tokens);
  CHECK(only_tokens(run.results[2]) == cases[1].greedy_new_tokens);
  CHECK(only_tokens(run.results[3]) == cases[2].greedy_new_tokens);
  const std::vector<std::int32_t>& longest = only_tokens(run.results[4]);
  REQUIRE(longest.size() == 24);
  CHECK(std::vector<std::int32_t>(longest.begin(), longest.begin() + 16) ==
        cases[2].greedy_new_tokens);
  CHECK(run.stats.failed == 1);
  CHECK(run.stats.finished == 4);
  CHECK(run.stats.preemptions > 0);
}

TEST_CASE("the choices of one request draw independently, and greedy ones agree") {
  const auto cases = load_reference("llama-tiny");
  const auto source = open_fixture("llama-tiny");
  Engine engine(*source, EngineShape{});

  SUBCASE("sampled: each choice its own seed, the first the request's") {
    const EngineRun pair = run_requests(engine.actor, {sampled_request(cases[2], 42, 2)});
    const EngineResult& result = pair.results[0];
    REQUIRE(result.status.ok());
    REQUIRE(result.choices.size() == 2);
    CHECK(result.choices[0].tokens.size() == 12);
    CHECK(result.choices[1].tokens.size() == 12);
    CHECK(result.choices[0].tokens != result.choices[1].tokens);
    const EngineRun one = run_requests(engine.actor, {sampled_request(cases[2], 42)});
    CHECK(result.choices[0].tokens == only_tokens(one.results[0]));
    // Seeded, so the pair repeats, here in a batch with another request.
    const EngineRun again = run_requests(
        engine.actor, {sampled_request(cases[0], 1), sampled_request(cases[2], 42, 2)});
    REQUIRE(again.results[1].choices.size() == 2);
    CHECK(again.results[1].choices[0].tokens == result.choices[0].tokens);
    CHECK(again.results[1].choices[1].tokens == result.choices[1].tokens);
    CHECK(pair.stats.generated_tokens == 24);
    CHECK(pair.stats.finished == 1);
    // The second choice of seed 42 is not the first choice of seed 43: users who seed
    // requests 0, 1, 2, ... with n > 1 get no duplicate samples.
    const EngineRun next_seed = run_requests(engine.actor, {sampled_request(cases[2], 43)});
    CHECK(result.choices[1].tokens != only_tokens(next_seed.results[0]));
  }

  SUBCASE("greedy: both choices are the reference, also when they cannot run together") {
    for (const std::int64_t blocks : {64, 4}) {
      CAPTURE(blocks);
      EngineShape shape;
      shape.num_blocks = blocks;  // 4: each choice needs the whole cache
      Engine small(*source, shape);
      EngineRequest request = greedy_request(cases[2]);
      request.n = 2;
      const EngineRun run = run_requests(small.actor, {request});
      const EngineResult& result = run.results[0];
      REQUIRE(result.status.ok());
      REQUIRE(result.choices.size() == 2);
      CHECK(result.choices[0].tokens == cases[2].greedy_new_tokens);
      CHECK(result.choices[1].tokens == cases[2].greedy_new_tokens);
      CHECK(result.prompt_tokens == 40);
    }
  }
}

TEST_CASE("a result's first token comes no later than its last") {
  const auto cases = load_reference("llama-tiny");
  const auto source = open_fixture("llama-tiny");
  EngineShape shape;
  shape.max_step_tokens = 7;  // several steps before the longest prompt samples
  Engine engine(*source, shape);
  std::vector<EngineRequest> requests = greedy_requests(cases);
  requests.push_back(greedy_request(cases[1], 1));  // one token: first and last at once
  const auto start = SteadyClock::now();
  const EngineRun run = run_requests(engine.actor, requests);
  const double wall = std::chrono::duration<double>(SteadyClock::now() - start).count();
  for (const EngineResult& r : run.results) {
    CAPTURE(r.key);
    REQUIRE(r.status.ok());
    CHECK(r.first_token_seconds > 0);
    CHECK(r.first_token_seconds <= r.latency_seconds);
    CHECK(r.latency_seconds <= wall);
  }
  // A 40-token prompt in chunks of at most 7 samples after the 5-token one has.
  CHECK(run.results[2].first_token_seconds > run.results[0].first_token_seconds);
}

TEST_CASE("a failed step throws out of the engine; a new engine runs normally") {
  const auto cases = load_reference("llama-tiny");
  const auto source = open_fixture("llama-tiny");
  for (const std::int64_t stages : {1, 2}) {
    CAPTURE(stages);
    const EngineShape shape{stages};
    {
      LocalPipeline pipeline(*source, pipeline_options(shape));
      FailingStepRunner failing(pipeline, /*failing_step=*/3);
      SchedulerActor actor(failing, actor_options(*source, shape));
      std::string message;
      try {
        run_requests(actor, greedy_requests(cases));
      } catch (const Error& e) {
        message = e.status().message();
      }
      CHECK_MESSAGE(message.find("stage of layers") != std::string::npos, message);
    }
    // The stage that failed has stopped; a new pipeline and engine start clean.
    Engine engine(*source, shape);
    const EngineRun run = run_requests(engine.actor, greedy_requests(cases));
    for (std::size_t i = 0; i < cases.size(); ++i)
      CHECK(only_tokens(run.results[i]) == cases[i].greedy_new_tokens);
  }
}

TEST_CASE("SmolLM2-135M streams each choice's text as it is released") {
  const auto path = resolve_model_path("smollm2-135m-instruct");
  if (!path.ok()) {
    MESSAGE("skipped: " << path.status().to_string());
    return;
  }
  const auto source = open_model_source(*path).value();
  // A llama architecture from GGUF: RoPE rotates interleaved pairs.
  CHECK(source->spec().rope_pairing == RopePairing::kInterleaved);
  REQUIRE(source->tokenizer().has_value());
  auto tokenizer = std::make_shared<Tokenizer>(*source->tokenizer());
  EngineShape shape;
  shape.num_blocks = 32;
  Engine engine(*source, shape, tokenizer);

  EngineRequest story;
  story.prompt = tokenizer->encode("Once upon a time", /*add_special=*/false);
  story.sampling.temperature = 0.8f;
  story.sampling.max_tokens = 24;
  story.sampling.ignore_eos = true;
  story.sampling.seed = 7;
  story.n = 2;
  EngineRequest stopped = story;
  stopped.n = 1;
  stopped.sampling.temperature = 0;
  stopped.sampling.stop_strings = {"."};

  std::map<std::pair<std::uint64_t, std::int32_t>, std::string> streamed;
  const EngineRun run =
      run_requests(engine.actor, {story, stopped},
                   [&](std::uint64_t key, std::int32_t choice, std::string_view text) {
                     streamed[{key, choice}] += text;
                   });
  for (std::size_t key = 0; key < run.results.size(); ++key) {
    const EngineResult& result = run.results[key];
    REQUIRE(result.status.ok());
    for (std::size_t c = 0; c < result.choices.size(); ++c) {
      CAPTURE(key);
      CAPTURE(c);
      const EngineChoice& choice = result.choices[c];
      CHECK(!choice.text.empty());
      CHECK(streamed[{key, static_cast<std::int32_t>(c)}] == choice.text);
    }
  }
  CHECK(run.results[0].choices[0].text != run.results[0].choices[1].text);
  // The stop string ends the greedy answer (its first sentence) and stays out of its
  // text, also out of what was streamed.
  const EngineChoice& greedy = run.results[1].choices[0];
  CHECK(greedy.finish_reason == FinishReason::kStop);
  CHECK(greedy.tokens.size() < 24);
  CHECK(greedy.text.find('.') == std::string::npos);

  // A consumer that throws ends the run with its exception; with one stage nothing is
  // left in flight, so a new engine loop on the same pipeline runs normally.
  CHECK_THROWS_AS(run_requests(engine.actor, {story},
                               [](std::uint64_t, std::int32_t, std::string_view) {
                                 throw std::runtime_error("consumer failed");
                               }),
                  std::runtime_error);
  SchedulerActor fresh(engine.pipeline, actor_options(*source, shape, tokenizer));
  const EngineRun again = run_requests(fresh, {story});
  REQUIRE(again.results[0].choices.size() == 2);
  CHECK(again.results[0].choices[0].tokens == run.results[0].choices[0].tokens);
  CHECK(again.results[0].choices[1].tokens == run.results[0].choices[1].tokens);
}
