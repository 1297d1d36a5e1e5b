// A stage that is the whole pipeline starts the next micro-batch while the device still
// runs the current one. On a backend whose results arrive late (DeferringBackend), the
// engine must produce exactly the tokens of a backend that waits for every op: greedy,
// sampled and penalised requests alike, with the steps really overlapping.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "common/channel.h"
#include "common/synthetic/random_model_source.h"
#include "coordinator/scheduler_actor.h"
#include "coordinator/step_runner.h"
#include "tests/deferring_backend.h"
#include "worker/executor.h"
#include "worker/stage_actor.h"

namespace conveyor {
namespace {

constexpr std::int64_t kBlocks = 64;

// One stage over the given backend, as LocalPipeline wires a one-stage pipeline.
class SoloStage final : public StepRunner {
 public:
  SoloStage(Backend& backend, const ModelSource& source)
      : stage_(std::make_unique<Executor>(backend, source, LayerRange::all(source.spec()),
                                          KvGeometry{kBlocks, 16}),
               nullptr, nullptr, results_) {}
  int depth() const override { return 1; }
  void submit(std::shared_ptr<const StepPlan> plan) override { stage_.submit(std::move(plan)); }
  // After a failed step nothing more comes back, as LocalPipeline answers.
  StepOutput next_result() override {
    if (!stopped_.ok()) return StepOutput{0, stopped_, {}};
    StepOutput out = results_.receive().value();
    if (!out.status.ok()) stopped_ = Status(ErrorCode::kUnavailable, "stage stopped");
    return out;
  }
  StageStats stats() const { return stage_.stats(); }

 private:
  Status stopped_;
  Channel<StepOutput> results_;
  StageActor stage_;
};

std::unique_ptr<ModelSource> tiny_model() {
  RandomModelOptions options;
  options.seed = 7;
  options.max_positions = 256;
  options.threads = 2;
  return make_random_model({"overlap-test", 64, 2, 4, 2, 128, 512, false, 10000}, options);
}

// Twelve requests: greedy (on the backend), sampled and penalised (on the host).
std::vector<EngineRequest> requests() {
  std::vector<EngineRequest> out;
  for (std::uint64_t i = 0; i < 12; ++i) {
    EngineRequest r;
    r.key = i;
    for (std::uint64_t t = 0; t < 5 + 3 * i; ++t)
      r.prompt.push_back(static_cast<std::int32_t>((i * 37 + t * 11) % 500 + 1));
    r.sampling.max_tokens = 10;
    r.sampling.ignore_eos = true;
    r.sampling.seed = 100 + i;
    if (i % 3 == 0) {
      r.sampling.temperature = 0;
    } else if (i % 3 == 1) {
      r.sampling.temperature = 0.8f;
      r.sampling.top_k = 20;
    } else {
      r.sampling.temperature = 0;
      r.sampling.repetition_penalty = 1.3f;
    }
    out.push_back(std::move(r));
  }
  return out;
}

struct Outcome {
  std::vector<std::vector<std::int32_t>> tokens;  // by request key
  StageStats stage;
};

Outcome run(Backend& backend, const ModelSource& source, std::int64_t micro_batches) {
  SoloStage stage(backend, source);
  SchedulerActorOptions options;
  // Small steps, so that every micro-batch takes several.
  options.scheduler = {kBlocks, 16, 8, 64, false};
  options.micro_batches = micro_batches;
  options.vocab_size = source.spec().vocab_size;
  options.context_limit = source.spec().max_positions;
  SchedulerActor actor(stage, options);
  Channel<EngineRequest> channel;
  for (EngineRequest& r : requests())
    channel.send(std::move(r));
  channel.close();
  Outcome outcome;
  outcome.tokens.resize(12);
  actor.run(channel, [&](EngineResult result) {
    REQUIRE(result.status.ok());
    REQUIRE(result.choices.size() == 1);
    outcome.tokens[result.key] = result.choices[0].tokens;
  });
  outcome.stage = stage.stats();
  return outcome;
}

TEST_CASE(
    "two micro-batches overlap on a deferring backend and give the waiting backend's tokens") {
  const auto source = tiny_model();
  testing::ForwardingBackend waiting;
  const Outcome expected = run(waiting, *source, 2);
  testing::DeferringBackend deferring;
  const Outcome overlapped = run(deferring, *source, 2);
  for (std::size_t i = 0; i < expected.tokens.size(); ++i) {
    CAPTURE(i);
    REQUIRE(expected.tokens[i].size() == 10);
    CHECK(overlapped.tokens[i] == expected.tokens[i]);
  }
  // A step started while the one before it still ran on the "device", each of the two
  // on its own lane.
  CHECK(deferring.most_outstanding == 2);
  CHECK_FALSE(deferring.lane_misused);
  CHECK(std::count(deferring.lanes_used.begin(), deferring.lanes_used.end(), 1) > 0);
  CHECK(overlapped.stage.steps == expected.stage.steps);
  CHECK(overlapped.stage.in_flight == 0);
}

TEST_CASE("a device fault seen while the stage waits for the next plan fails the run cleanly") {
  const auto source = tiny_model();
  testing::DeferringBackend faulty;
  faulty.faulty = true;
  SoloStage stage(faulty, *source);
  SchedulerActorOptions options;
  options.scheduler = {kBlocks, 16, 8, 64, false};
  options.micro_batches = 2;
  options.vocab_size = source->spec().vocab_size;
  options.context_limit = source->spec().max_positions;
  SchedulerActor actor(stage, options);
  Channel<EngineRequest> channel;
  for (EngineRequest& r : requests())
    channel.send(std::move(r));
  channel.close();
  // The stage reports the failed step; the scheduler ends the run with its error.
  std::string error;
  try {
    actor.run(channel, [](EngineResult) {});
  } catch (const Error& e) {
    error = e.status().message();
  }
  CHECK(error.find("device fault") != std::string::npos);
}

TEST_CASE("one micro-batch at a time never starts a step before the last one finished") {
  const auto source = tiny_model();
  testing::ForwardingBackend waiting;
  const Outcome expected = run(waiting, *source, 1);
  testing::DeferringBackend deferring;
  const Outcome serial = run(deferring, *source, 1);
  CHECK(serial.tokens == expected.tokens);
  CHECK(deferring.most_outstanding == 1);
}

}  // namespace
}  // namespace conveyor
