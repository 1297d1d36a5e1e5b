// `conveyor bench`: throughput of the engine on a random-weight model of a named
// shape. N random prompts of P tokens each generate exactly T tokens (no early stop),
// through the same scheduler actor and pipeline as `conveyor run`, once with
// continuous batching and once with static batching. With --shared-prefix, the prompts
// begin with the same tokens (a shared system prompt), which prefix caching reuses.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/commands.h"
#include "cli/engine_setup.h"
#include "common/synthetic/random_model_source.h"
#include "worker/sampling/sampling_params.h"

namespace conveyor::cli {
namespace {

struct BenchOptions {
  std::string shape = "smollm2-135m";
  std::string dtype = "bf16";
  std::int64_t prompts = 64;
  std::int64_t input_len = 128;
  std::int64_t output_len = 128;
  // Lengths drawn uniformly from [len * (1 - ratio), len * (1 + ratio)], as vLLM's
  // random dataset does; 0: every prompt exactly --input-len in, --output-len out.
  double range_ratio = 0;
  // The first tokens of every prompt, identical across prompts (at most the prompt).
  std::int64_t shared_prefix = 0;
  std::string modes = "both";
  std::uint64_t seed = 0;
  // Greedy by default; with a temperature, every request draws (seeded per request)
  // through top-k and top-p as given.
  float temperature = 0;
  std::int32_t top_k = 0;
  float top_p = 1.0f;
  bool json = false;
  std::string config_file;
  EngineFlags engine;
};

struct BenchRun {
  std::string mode;
  double seconds = 0;
  double output_tokens_per_second = 0;
  double total_tokens_per_second = 0;
  double ttft_mean = 0;
  double ttft_p50 = 0;
  double ttft_p99 = 0;
  double step_mean = 0;
  double host_mean = 0;  // the scheduler's time between a result and the next step
  // A stage's own host time per step (preparing it, launching its ops, taking in its
  // result: all but the wait for the device), the busiest stage's.
  double stage_host_mean = 0;
  std::int64_t steps = 0;
  std::int64_t preemptions = 0;
  std::int64_t swaps_to_host = 0;  // of the preemptions, those that swapped to the host tier
  std::int64_t swaps_to_disk = 0;
  std::int64_t output_tokens = 0;
  std::int64_t prompt_tokens = 0;
  // Prompt positions looked up in the prefix cache, and those found there.
  std::int64_t prefix_queried_tokens = 0;
  std::int64_t prefix_hit_tokens = 0;
};

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

BenchRun run_once(const BenchOptions& o, RunConfig config, std::shared_ptr<ModelSource> source,
                  bool static_batching) {
  config.scheduler.static_batching = static_batching;
  Engine engine = build_engine(config, source, {"random:" + o.shape});
  const std::int64_t vocab = source->spec().vocab_size;

  Channel<EngineRequest> requests;
  std::mt19937_64 random(o.seed);
  std::uniform_int_distribution<std::int32_t> token(0, static_cast<std::int32_t>(vocab - 1));
  const auto length = [&](std::int64_t mean) {
    const auto low = std::max<std::int64_t>(
        1, static_cast<std::int64_t>(static_cast<double>(mean) * (1 - o.range_ratio)));
    const auto high = static_cast<std::int64_t>(static_cast<double>(mean) * (1 + o.range_ratio));
    return std::uniform_int_distribution<std::int64_t>(low, std::max(low, high))(random);
  };
  std::vector<std::int32_t> prefix(static_cast<std::size_t>(o.shared_prefix));
  for (auto& t : prefix)
    t = token(random);
  std::int64_t prompt_tokens = 0;
  const auto submitted = SteadyClock::now();
  for (std::int64_t i = 0; i < o.prompts; ++i) {
    EngineRequest r;
    r.key = static_cast<std::uint64_t>(i);
    r.prompt.resize(static_cast<std::size_t>(length(o.input_len)));
    for (auto& t : r.prompt)
      t = token(random);
    std::copy_n(prefix.begin(), std::min(prefix.size(), r.prompt.size()), r.prompt.begin());
    prompt_tokens += static_cast<std::int64_t>(r.prompt.size());
    r.sampling.temperature = o.temperature;
    r.sampling.top_k = o.top_k;
    r.sampling.top_p = o.top_p;
    r.sampling.seed = o.seed + static_cast<std::uint64_t>(i);
    r.sampling.ignore_eos = true;
    r.sampling.max_tokens = static_cast<std::int32_t>(length(o.output_len));
    r.submitted = submitted;
    requests.send(std::move(r));
  }
  requests.close();

  std::vector<double> ttft;
  std::int64_t output_tokens = 0;
  engine.scheduler->run(requests, [&](EngineResult result) {
    if (!result.status.ok()) throw Error(result.status.code(), result.status.message());
    ttft.push_back(result.first_token_seconds);
    for (const EngineChoice& c : result.choices)
      output_tokens += static_cast<std::int64_t>(c.tokens.size());
  });
  const EngineStats& stats = engine.scheduler->stats();
  BenchRun run;
  run.mode = static_batching ? "static" : "continuous";
  run.seconds = stats.seconds;
  run.output_tokens = output_tokens;
  run.output_tokens_per_second = static_cast<double>(output_tokens) / stats.seconds;
  run.total_tokens_per_second = static_cast<double>(output_tokens + prompt_tokens) / stats.seconds;
  double sum = 0;
  for (double t : ttft)
    sum += t;
  run.ttft_mean = ttft.empty() ? 0 : sum / static_cast<double>(ttft.size());
  run.ttft_p50 = percentile(ttft, 0.50);
  run.ttft_p99 = percentile(ttft, 0.99);
  run.steps = stats.steps;
  run.step_mean = stats.steps > 0 ? stats.step_seconds / static_cast<double>(stats.steps) : 0;
  run.host_mean =
      stats.host_intervals > 0 ? stats.host_seconds / static_cast<double>(stats.host_intervals) : 0;
  for (const StageStats& stage : engine.pipeline->stage_stats()) {
    if (stage.steps == 0) continue;
    run.stage_host_mean =
        std::max(run.stage_host_mean, (stage.compute_seconds - stage.device_wait_seconds) /
                                          static_cast<double>(stage.steps));
  }
  run.preemptions = stats.preemptions;
  run.swaps_to_host = stats.swap_preemptions - stats.disk_swap_preemptions;
  run.swaps_to_disk = stats.disk_swap_preemptions;
  run.prompt_tokens = prompt_tokens;
  run.prefix_queried_tokens = stats.prefix_queried_tokens;
  run.prefix_hit_tokens = stats.prefix_hit_tokens;
  return run;
}

int run_bench(const BenchOptions& o) {
  if (o.prompts < 1 || o.input_len < 1 || o.output_len < 1) {
    fail(ErrorCode::kInvalidArgument, "--prompts, --input-len and --output-len must be >= 1");
  }
  if (o.shared_prefix < 0) fail(ErrorCode::kInvalidArgument, "--shared-prefix must be >= 0");
  if (o.range_ratio < 0 || o.range_ratio >= 1) {
    fail(ErrorCode::kInvalidArgument, "--range-ratio must be in [0, 1)");
  }
  if (o.modes != "both" && o.modes != "continuous" && o.modes != "static") {
    fail(ErrorCode::kInvalidArgument, "--mode must be continuous, static or both");
  }
  RunConfig config = load_config_or_defaults(o.config_file);
  apply_engine_flags(o.engine, config);
  Expected<ModelShape> shape = model_shape(o.shape);
  if (!shape.ok()) throw Error(shape.status().code(), shape.status().message());
  const std::optional<DType> dtype = dtype_from_name(o.dtype);
  if (!dtype) fail(ErrorCode::kInvalidArgument, "--dtype: unknown type '" + o.dtype + "'");

  {
    SamplingParams sampling;
    sampling.temperature = o.temperature;
    sampling.top_k = o.top_k;
    sampling.top_p = o.top_p;
    const Status valid = sampling.validate();
    if (!valid.ok()) fail(ErrorCode::kInvalidArgument, valid.message());
  }

  RandomModelOptions model_options;
  model_options.dtype = *dtype;
  model_options.seed = o.seed;
  model_options.max_positions = std::max<std::int64_t>(4096, o.input_len + o.output_len);
  const auto build_start = SteadyClock::now();
  std::shared_ptr<ModelSource> source = make_random_model(*shape, model_options);
  std::fprintf(stderr, "[bench] %s: %.2f B parameters, %s, built in %.1f s\n", o.shape.c_str(),
               static_cast<double>(shape->parameters()) / 1e9, source->format().c_str(),
               std::chrono::duration<double>(SteadyClock::now() - build_start).count());

  std::vector<BenchRun> runs;
  if (o.modes != "static") runs.push_back(run_once(o, config, source, false));
  if (o.modes != "continuous") runs.push_back(run_once(o, config, source, true));

  if (o.json) {
    nlohmann::json out = {{"shape", o.shape},
                          {"dtype", o.dtype},
                          {"prompts", o.prompts},
                          {"input_len", o.input_len},
                          {"output_len", o.output_len},
                          {"shared_prefix", o.shared_prefix},
                          {"temperature", o.temperature},
                          {"top_k", o.top_k},
                          {"top_p", o.top_p},
                          {"prefix_caching", config.kv.prefix_caching},
                          {"threads", config.threads},
                          {"stages", config.stages},
                          {"max_sequences", config.scheduler.max_sequences},
                          {"max_step_tokens", config.scheduler.max_step_tokens}};
    for (const BenchRun& r : runs) {
      out["runs"].push_back({{"mode", r.mode},
                             {"seconds", r.seconds},
                             {"output_tokens", r.output_tokens},
                             {"output_tokens_per_second", r.output_tokens_per_second},
                             {"total_tokens_per_second", r.total_tokens_per_second},
                             {"ttft_mean_seconds", r.ttft_mean},
                             {"ttft_p50_seconds", r.ttft_p50},
                             {"ttft_p99_seconds", r.ttft_p99},
                             {"step_mean_seconds", r.step_mean},
                             {"host_mean_seconds", r.host_mean},
                             {"stage_host_mean_seconds", r.stage_host_mean},
                             {"steps", r.steps},
                             {"preemptions", r.preemptions},
                             {"swaps_to_host", r.swaps_to_host},
                             {"swaps_to_disk", r.swaps_to_disk},
                             {"prompt_tokens", r.prompt_tokens},
                             {"prefix_queried_tokens", r.prefix_queried_tokens},
                             {"prefix_hit_tokens", r.prefix_hit_tokens}});
    }
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::printf("shape %s (%s), %lld prompts x %lld in / %lld out", o.shape.c_str(), o.dtype.c_str(),
              static_cast<long long>(o.prompts), static_cast<long long>(o.input_len),
              static_cast<long long>(o.output_len));
  if (o.shared_prefix > 0) {
    std::printf(", the first %lld shared", static_cast<long long>(o.shared_prefix));
  }
  if (o.temperature > 0) {
    std::printf(", sampled (temperature %g, top-k %d, top-p %g)",
                static_cast<double>(o.temperature), o.top_k, static_cast<double>(o.top_p));
  }
  std::printf(", prefix caching %s\n", config.kv.prefix_caching ? "on" : "off");
  // "host ms": the scheduler's own time between a step's result and the next step, which
  // a pipeline with one step in flight waits through. "stage ms": the stage's own host
  // time in a step, all but its wait for the device (the busiest stage's).
  std::printf("%-11s %9s %12s %12s %10s %10s %10s %10s %6s %7s %7s %7s %8s %8s\n", "mode",
              "seconds", "out tok/s", "total tok/s", "TTFT mean", "TTFT p50", "TTFT p99", "step ms",
              "steps", "preempt", "->host", "->disk", "host ms", "stage ms");
  for (const BenchRun& r : runs) {
    std::printf(
        "%-11s %9.2f %12.1f %12.1f %10.3f %10.3f %10.3f %10.1f %6lld %7lld %7lld %7lld "
        "%8.2f %8.2f\n",
        r.mode.c_str(), r.seconds, r.output_tokens_per_second, r.total_tokens_per_second,
        r.ttft_mean, r.ttft_p50, r.ttft_p99, r.step_mean * 1000, static_cast<long long>(r.steps),
        static_cast<long long>(r.preemptions), static_cast<long long>(r.swaps_to_host),
        static_cast<long long>(r.swaps_to_disk), r.host_mean * 1000, r.stage_host_mean * 1000);
  }
  for (const BenchRun& r : runs) {
    if (r.prefix_queried_tokens == 0) continue;
    std::printf("%s: prefix cache reused %lld of %lld prompt tokens (%.1f%% of those looked up)\n",
                r.mode.c_str(), static_cast<long long>(r.prefix_hit_tokens),
                static_cast<long long>(r.prompt_tokens),
                100.0 * static_cast<double>(r.prefix_hit_tokens) /
                    static_cast<double>(r.prefix_queried_tokens));
  }
  return 0;
}

}  // namespace

void register_bench(CLI::App& app, CommandResult& result) {
  CLI::App* cmd = app.add_subcommand(
      "bench", "Throughput on a random-weight model: continuous vs static batching");
  auto o = std::make_shared<BenchOptions>();
  std::string shapes;
  for (const std::string& name : model_shape_names())
    shapes += (shapes.empty() ? "" : ", ") + name;
  cmd->add_option("--shape", o->shape, "model shape: " + shapes)->capture_default_str();
  cmd->add_option("--dtype", o->dtype,
                  "weight type: f32, f16, bf16; GGUF q8_0, q4_0, q4_1, q4_k, q6_k; compressed "
                  "q4_g128, q8_r, f8_r, s24_f16 (2:4 sparse)")
      ->capture_default_str();
  cmd->add_option("--prompts", o->prompts, "number of prompts")->capture_default_str();
  cmd->add_option("--input-len", o->input_len, "prompt tokens")->capture_default_str();
  cmd->add_option("--output-len", o->output_len, "generated tokens per prompt")
      ->capture_default_str();
  cmd->add_option("--range-ratio", o->range_ratio,
                  "lengths vary uniformly by this share around --input-len and --output-len")
      ->capture_default_str();
  cmd->add_option("--shared-prefix", o->shared_prefix,
                  "the first N prompt tokens are the same in every prompt (prefix caching, on "
                  "unless --no-prefix-caching, computes them once)")
      ->capture_default_str();
  cmd->add_option("--mode", o->modes, "continuous, static or both")->capture_default_str();
  cmd->add_option("--temperature", o->temperature, "0: greedy; above, every request samples")
      ->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "with --temperature: keep the k most likely tokens (0: all)")
      ->capture_default_str();
  cmd->add_option("--top-p", o->top_p, "with --temperature: keep the most likely tokens holding p")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "weights and prompts");
  cmd->add_flag("--json", o->json, "one JSON object on stdout");
  cmd->add_option("-c,--config", o->config_file, "YAML config (see config/local.yaml)");
  add_engine_flags(*cmd, o->engine);
  cmd->callback([&result, o] { result = [o] { return run_bench(*o); }; });
}

}  // namespace conveyor::cli
