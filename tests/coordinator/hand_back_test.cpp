// A scheduler actor whose pipeline is lost mid-job hands every unfinished request back
// with its progress, and another actor on a fresh pipeline continues them to exactly
// the outputs an uninterrupted run gives: tokens, log-probs and finish reasons, with
// sampling (seeded or not), several choices per request, and preemption.
#include <doctest/doctest.h>

#include <map>

#include "common/synthetic/model_shapes.h"
#include "common/synthetic/random_model_source.h"
#include "coordinator/engine_metrics.h"
#include "coordinator/local_pipeline.h"
#include "coordinator/scheduler_actor.h"

namespace conveyor {
namespace {

std::unique_ptr<ModelSource> tiny_model() {
  Expected<ModelShape> shape = model_shape("tiny");
  REQUIRE(shape.ok());
  RandomModelOptions options;
  options.dtype = DType::kF32;
  options.seed = 11;
  options.max_positions = 512;
  options.threads = 2;
  return make_random_model(*shape, options);
}

// A pipeline that is lost after `healthy` results: from then on every result is
// kUnavailable, as a remote pipeline whose worker died answers.
class LosingRunner final : public StepRunner {
 public:
  LosingRunner(StepRunner& inner, int healthy) : inner_(inner), healthy_(healthy) {}
  int depth() const override { return inner_.depth(); }
  void submit(std::shared_ptr<const StepPlan> plan) override {
    if (!lost()) inner_.submit(std::move(plan)), ++outstanding_;
  }
  StepOutput next_result() override {
    if (lost()) {
      // Collect what the inner pipeline still owes, as a real loss would drop it.
      for (; outstanding_ > 0; --outstanding_)
        (void)inner_.next_result();
      return StepOutput{0, Status(ErrorCode::kUnavailable, "pipeline replica lost"), {}};
    }
    --outstanding_;
    ++delivered_;
    return inner_.next_result();
  }

 private:
  bool lost() const { return delivered_ >= healthy_; }
  StepRunner& inner_;
  int healthy_;
  int delivered_ = 0;
  int outstanding_ = 0;
};

SchedulerActorOptions actor_options(const ModelSource& source, std::int64_t blocks) {
  SchedulerActorOptions options;
  options.scheduler.num_blocks = blocks;
  options.scheduler.block_size = 16;
  options.scheduler.max_sequences = 8;
  options.scheduler.max_step_tokens = 64;
  options.vocab_size = source.spec().vocab_size;
  options.context_limit = blocks * 16;
  options.eos_ids = {3};
  return options;
}

std::vector<EngineRequest> requests_for_test() {
  std::vector<EngineRequest> requests;
  for (std::uint64_t i = 0; i < 10; ++i) {
    EngineRequest r;
    r.key = i;
    for (std::int32_t t = 0; t < 5 + static_cast<std::int32_t>(i) * 7; ++t)
      r.prompt.push_back(static_cast<std::int32_t>((t * 37 + i * 11) % 250 + 4));
    r.sampling.max_tokens = 20 + static_cast<std::int32_t>(i % 4) * 9;
    r.sampling.temperature = i % 3 == 0 ? 0.0f : 0.9f;
    if (i % 2 == 0) r.sampling.seed = 1000 + i;  // the others draw a seed when added
    r.sampling.logprobs = i % 4 == 1;
    r.sampling.top_logprobs = r.sampling.logprobs ? 2 : 0;
    r.n = i % 5 == 2 ? 3 : 1;
    requests.push_back(std::move(r));
  }
  return requests;
}

struct ChoiceView {
  std::vector<std::int32_t> tokens;
  std::vector<float> logprobs;
  FinishReason finish = FinishReason::kStop;
  bool operator==(const ChoiceView&) const = default;
};

std::vector<ChoiceView> view(const EngineResult& result) {
  std::vector<ChoiceView> out;
  for (const EngineChoice& c : result.choices) {
    ChoiceView v{c.tokens, {}, c.finish_reason};
    for (const SampleResult& s : c.logprobs)
      v.logprobs.push_back(s.logprob.value_or(0));
    out.push_back(std::move(v));
  }
  return out;
}

TEST_CASE("requests handed back by a lost replica continue to the same outputs elsewhere") {
  auto source = tiny_model();
  const std::int64_t blocks = 24;  // small: sequences are preempted on the way
  LocalPipelineOptions pipeline_options;
  pipeline_options.stages = 2;
  pipeline_options.backend.threads = 2;
  pipeline_options.kv = {blocks, 16};

  // Unseeded requests draw their seed when added: fix them through the hand-back
  // path's own contract by giving every request a seed in the reference run too.
  std::vector<EngineRequest> originals = requests_for_test();
  for (EngineRequest& r : originals) {
    if (!r.sampling.seed) r.sampling.seed = 77 + r.key;
  }

  std::map<std::uint64_t, std::vector<ChoiceView>> expected;
  {
    LocalPipeline pipeline(*source, pipeline_options);
    SchedulerActor actor(pipeline, actor_options(*source, blocks));
    Channel<EngineRequest> channel;
    for (const EngineRequest& r : originals)
      channel.send(r);
    channel.close();
    actor.run(channel, [&](EngineResult result) {
      REQUIRE(result.status.ok());
      expected[result.key] = view(result);
    });
    REQUIRE(expected.size() == originals.size());
  }

  for (int healthy : {1, 3, 9, 25}) {
    CAPTURE(healthy);
    std::map<std::uint64_t, std::vector<ChoiceView>> got;
    std::vector<EngineRequest> handed_back;
    // Both replicas count into one registry: a token is counted where it was
    // generated, never again where a handed-back request replays it.
    auto registry = std::make_shared<prometheus::Registry>();
    // Held past the lost replica's end: its series leave the registry with it.
    auto lost_metrics = std::make_shared<EngineMetrics>(
        registry, std::map<std::string, std::string>{{"replica", "1"}});
    {
      LocalPipeline pipeline(*source, pipeline_options);
      LosingRunner losing(pipeline, healthy);
      SchedulerActorOptions losing_options = actor_options(*source, blocks);
      losing_options.metrics = lost_metrics;
      SchedulerActor actor(losing, losing_options);
      Channel<EngineRequest> channel;
      for (const EngineRequest& r : originals)
        channel.send(r);
      channel.close();
      const bool finished = actor.run_until_lost(
          channel, [&](EngineResult result) { got[result.key] = view(result); },
          [&](EngineRequest r) { handed_back.push_back(std::move(r)); });
      CHECK_FALSE(finished);
      // What it had not taken yet stays in the channel for the next replica.
      while (auto rest = channel.try_receive())
        handed_back.push_back(std::move(*rest));
    }
    CHECK(got.size() + handed_back.size() == originals.size());
    bool any_progress = false;
    for (const EngineRequest& r : handed_back) {
      if (!r.progress) continue;
      CHECK(r.sampling.seed.has_value());
      bool progressed = false;
      for (const RequestProgress::Choice& c : r.progress->choices)
        progressed = progressed || c.finished || !c.samples.empty();
      any_progress = any_progress || progressed;
      // A request the lost replica ran counts one loss; one it only held, none.
      CHECK(r.hand_backs <= 1);
      if (progressed) CHECK(r.hand_backs == 1);
    }
    if (healthy >= 9) CHECK(any_progress);

    LocalPipeline pipeline(*source, pipeline_options);
    SchedulerActorOptions next_options = actor_options(*source, blocks);
    next_options.metrics = std::make_shared<EngineMetrics>(
        registry, std::map<std::string, std::string>{{"replica", "2"}});
    SchedulerActor actor(pipeline, next_options);
    Channel<EngineRequest> channel;
    for (EngineRequest& r : handed_back)
      channel.send(std::move(r));
    channel.close();
    actor.run(channel, [&](EngineResult result) {
      REQUIRE(result.status.ok());
      CHECK(got.count(result.key) == 0);
      got[result.key] = view(result);
    });
    REQUIRE(got.size() == expected.size());
    std::size_t output_tokens = 0;
    for (const auto& [key, choices] : expected) {
      CAPTURE(key);
      CHECK(got[key] == choices);
      for (const ChoiceView& c : choices)
        output_tokens += c.tokens.size();
    }
    double counted = 0;
    for (const prometheus::MetricFamily& family : registry->Collect()) {
      if (family.name != "conveyor_engine_generation_tokens_total") continue;
      for (const prometheus::ClientMetric& m : family.metric)
        counted += m.counter.value;
    }
    CHECK(counted == static_cast<double>(output_tokens));
  }
}

TEST_CASE("a request of a cancelled job is answered kCancelled without running") {
  auto source = tiny_model();
  LocalPipelineOptions pipeline_options;
  pipeline_options.backend.threads = 1;
  pipeline_options.kv = {16, 16};
  LocalPipeline pipeline(*source, pipeline_options);
  SchedulerActor actor(pipeline, actor_options(*source, 16));
  auto cancelled = std::make_shared<std::atomic<bool>>(true);
  Channel<EngineRequest> channel;
  EngineRequest r = requests_for_test().front();
  r.cancelled = cancelled;
  channel.send(std::move(r));
  channel.close();
  int results = 0;
  actor.run(channel, [&](EngineResult result) {
    ++results;
    CHECK(result.status.code() == ErrorCode::kCancelled);
    CHECK(result.choices.empty());
  });
  CHECK(results == 1);
  CHECK(actor.stats().steps == 0);
}

}  // namespace
}  // namespace conveyor
