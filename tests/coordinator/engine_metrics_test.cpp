// The engine's Prometheus metrics after a job on a tiny fixture: counters equal what
// the results say (tokens, requests, steps), histograms saw every request, the K/V
// gauges stay within the cache, and readiness follows progress.
#include <doctest/doctest.h>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <map>
#include <regex>
#include <string>
#include <thread>

#include "common/loader/open_model.h"
#include "coordinator/engine_metrics.h"
#include "coordinator/local_pipeline.h"
#include "coordinator/scheduler_actor.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/model/model_fixture.h"
#include "worker/activation_channel.h"
#include "worker/stage_actor.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

// Sample name (with labels) -> value, from the text exposition.
std::map<std::string, double> scrape(prometheus::Registry& registry) {
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  std::map<std::string, double> samples;
  const std::regex line(R"(^([a-z0-9_]+(\{[^}]*\})?) ([-+0-9.eE]+|NaN|\+Inf)$)");
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    const std::string l = text.substr(start, end - start);
    std::smatch m;
    if (std::regex_match(l, m, line)) samples[m[1]] = std::stod(m[3]);
    start = end == std::string::npos ? text.size() : end + 1;
  }
  return samples;
}

}  // namespace

TEST_CASE("engine metrics count what the job did") {
  auto source = open_model_source(hf_tiny_dir("llama-tiny")).value();
  LocalPipelineOptions pipeline_options;
  pipeline_options.backend.threads = 2;
  pipeline_options.kv = {24, 16};
  LocalPipeline pipeline(*source, pipeline_options);
  auto registry = std::make_shared<prometheus::Registry>();
  SchedulerActorOptions options;
  options.scheduler.num_blocks = 24;
  options.scheduler.block_size = 16;
  options.scheduler.max_sequences = 8;
  options.scheduler.max_step_tokens = 64;
  options.vocab_size = source->spec().vocab_size;
  options.context_limit = source->spec().max_positions;
  options.metrics = std::make_shared<EngineMetrics>(registry);
  SchedulerActor actor(pipeline, options);
  CHECK(options.metrics->ready());  // idle

  Channel<EngineRequest> requests;
  std::int64_t prompt_tokens = 0;
  constexpr int kRequests = 12;
  for (int i = 0; i < kRequests; ++i) {
    EngineRequest r;
    r.key = static_cast<std::uint64_t>(i);
    for (int t = 0; t < 20 + 7 * i; ++t)
      r.prompt.push_back((t * 31 + i) % 200 + 3);
    prompt_tokens += static_cast<std::int64_t>(r.prompt.size());
    r.sampling.temperature = 0;
    r.sampling.ignore_eos = true;
    r.sampling.max_tokens = 10 + i;
    requests.send(std::move(r));
  }
  requests.close();
  std::int64_t generated = 0;
  int finished = 0;
  actor.run(requests, [&](EngineResult result) {
    REQUIRE(result.status.ok());
    ++finished;
    generated += static_cast<std::int64_t>(result.choices.at(0).tokens.size());
  });
  REQUIRE(finished == kRequests);

  auto m = scrape(*registry);
  CHECK(m["conveyor_engine_generation_tokens_total"] == static_cast<double>(generated));
  CHECK(m["conveyor_engine_prompt_tokens_total"] == static_cast<double>(prompt_tokens));
  CHECK(m["conveyor_engine_requests_finished_total{finish_reason=\"length\"}"] == kRequests);
  CHECK(m["conveyor_engine_requests_finished_total{finish_reason=\"stop\"}"] == 0);
  CHECK(m["conveyor_engine_requests_failed_total"] == 0);
  CHECK(m["conveyor_engine_steps_total"] == static_cast<double>(actor.stats().steps));
  CHECK(m["conveyor_engine_preemptions_total{kind=\"recompute\"}"] ==
        static_cast<double>(actor.stats().preemptions));
  CHECK(m["conveyor_engine_preemptions_total{kind=\"swap\"}"] == 0);
  CHECK(m["conveyor_engine_kv_swapped_bytes_total"] == 0);  // no swap tier: nothing swaps
  // Every request was queued, got a first token and a result; every later token an
  // inter-token latency.
  CHECK(m["conveyor_engine_queue_time_seconds_count"] == kRequests);
  CHECK(m["conveyor_engine_time_to_first_token_seconds_count"] == kRequests);
  CHECK(m["conveyor_engine_e2e_request_latency_seconds_count"] == kRequests);
  CHECK(m["conveyor_engine_inter_token_latency_seconds_count"] ==
        static_cast<double>(generated - kRequests));
  CHECK(m["conveyor_engine_step_tokens_sum"] ==
        static_cast<double>(actor.stats().prefill_tokens + actor.stats().decode_tokens));
  // The job is over: nothing runs, nothing waits, no block is held but cached ones.
  CHECK(m["conveyor_engine_sequences_running"] == 0);
  CHECK(m["conveyor_engine_sequences_waiting"] == 0);
  CHECK(m["conveyor_engine_kv_blocks{tier=\"device\"}"] == 24);
  CHECK(m["conveyor_engine_kv_usage_ratio{tier=\"device\"}"] <= 1.0);
  CHECK(options.metrics->ready());
}

TEST_CASE("engine readiness: idle is ready, work in flight without progress is not") {
  EngineMetrics metrics(std::make_shared<prometheus::Registry>(), {},
                        0.05);  // wedged after 50 ms without a step back
  EngineState busy;
  busy.running = 1;
  busy.device = {1, 10};
  busy.in_flight = true;
  EngineState idle;
  idle.device = {0, 10};
  CHECK(metrics.ready());
  metrics.state(busy);     // a step goes in flight
  CHECK(metrics.ready());  // within its allowance
  metrics.step(16, 1, 0.001);
  CHECK(metrics.ready());
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  metrics.state(busy);  // still in flight, nothing came back
  CHECK_FALSE(metrics.ready());
  metrics.step(16, 1, 0.001);  // progress again
  CHECK(metrics.ready());
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  metrics.state(idle);  // done: idle, however long ago the last step
  CHECK(metrics.ready());
}

TEST_CASE("engines with labels share the families, and a gone engine's series leave") {
  auto registry = std::make_shared<prometheus::Registry>();
  auto first = std::make_unique<EngineMetrics>(
      registry, std::map<std::string, std::string>{{"replica", "1"}});
  EngineMetrics second(registry, {{"replica", "2"}});
  first->first_token(0.5);
  second.first_token(0.5);
  second.next_token(0.01);
  auto m = scrape(*registry);
  CHECK(m["conveyor_engine_generation_tokens_total{replica=\"1\"}"] == 1);
  CHECK(m["conveyor_engine_generation_tokens_total{replica=\"2\"}"] == 2);
  first.reset();
  m = scrape(*registry);
  CHECK(m.count("conveyor_engine_generation_tokens_total{replica=\"1\"}") == 0);
  CHECK(m["conveyor_engine_generation_tokens_total{replica=\"2\"}"] == 2);
  CHECK(m.count("conveyor_engine_kv_usage_ratio{replica=\"1\",tier=\"device\"}") == 0);
  CHECK(m.count("conveyor_engine_kv_usage_ratio{replica=\"2\",tier=\"device\"}") == 1);
}

TEST_CASE("stage statistics: every stage ran every step; the first sent its activations") {
  auto source = open_model_source(hf_tiny_dir("llama-tiny")).value();
  LocalPipelineOptions pipeline_options;
  pipeline_options.stages = 2;
  pipeline_options.backend.threads = 2;
  pipeline_options.kv = {24, 16};
  LocalPipeline pipeline(*source, pipeline_options);
  SchedulerActorOptions options;
  options.scheduler.num_blocks = 24;
  options.scheduler.block_size = 16;
  options.vocab_size = source->spec().vocab_size;
  options.context_limit = source->spec().max_positions;
  SchedulerActor actor(pipeline, options);
  Channel<EngineRequest> requests;
  for (int i = 0; i < 4; ++i) {
    EngineRequest r;
    r.key = static_cast<std::uint64_t>(i);
    r.prompt = {5, 6, 7, 8, 9, static_cast<std::int32_t>(10 + i)};
    r.sampling.temperature = 0;
    r.sampling.ignore_eos = true;
    r.sampling.max_tokens = 6;
    requests.send(std::move(r));
  }
  requests.close();
  actor.run(requests, [](EngineResult result) { REQUIRE(result.status.ok()); });

  const std::vector<StageStats> stages = pipeline.stage_stats();
  REQUIRE(stages.size() == 2);
  const auto steps = static_cast<std::uint64_t>(actor.stats().steps);
  CHECK(stages[0].steps == steps);
  CHECK(stages[1].steps == steps);
  CHECK(stages[0].compute_seconds > 0);
  CHECK(stages[0].input_wait_seconds == doctest::Approx(0).epsilon(0.01));
  // Every position computed crossed to the second stage as f32 hidden states.
  const auto positions =
      static_cast<std::uint64_t>(actor.stats().prefill_tokens + actor.stats().decode_tokens);
  CHECK(stages[0].activation_bytes_sent ==
        positions * static_cast<std::uint64_t>(source->spec().hidden_size) * sizeof(float));
  CHECK(stages[0].transport == "in-process");
  CHECK(stages[1].transport.empty());
  CHECK(stages[1].activation_bytes_sent == 0);
  CHECK(stages[1].bubble_ratio >= 0);
  CHECK(stages[1].bubble_ratio <= 1);
  CHECK(stages[0].in_flight == 0);  // the job is over: nothing waits, nothing stalls
  CHECK(stages[1].stalled_seconds == 0);
}

TEST_CASE("stage statistics: a stage waiting for activations that never come shows stalled") {
  auto source = open_model_source(hf_tiny_dir("llama-tiny")).value();
  CpuBackend backend(CpuBackendOptions{1, std::nullopt, false});
  // The second half of the layers: it waits for the first half's activations.
  const LayerRange layers{1, source->spec().num_layers};
  auto executor = std::make_unique<Executor>(backend, *source, layers, KvGeometry{8, 16});
  InProcessActivationChannel input;
  Channel<StepOutput> results;
  StageActor stage(std::move(executor), &input, nullptr, results);
  CHECK(stage.stats().in_flight == 0);
  CHECK(stage.stats().stalled_seconds == 0);

  auto plan = std::make_shared<StepPlan>();
  plan->step = 0;
  stage.submit(plan);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  const StageStats stalled = stage.stats();
  CHECK(stalled.in_flight == 1);
  CHECK(stalled.stalled_seconds >= 0.05);
  CHECK(stalled.steps == 0);

  input.close();  // the stage gives up on the missing activations and reports it
  const std::optional<StepOutput> failed = results.receive_for(std::chrono::seconds(5));
  REQUIRE(failed.has_value());
  CHECK_FALSE(failed->status.ok());
  stage.stop();
}
