#include "cli/engine_setup.h"

#include <cstdio>
#include <filesystem>

#include "cli/model_loading.h"
#include "cli/stage_metrics.h"
#include "common/config/size_parse.h"
#include "worker/kv_cache.h"
#include "worker/kv_store/kv_tier.h"

namespace conveyor::cli {

void add_engine_flags(CLI::App& cmd, EngineFlags& f, bool in_process_stages) {
  cmd.add_option("-m,--model", f.model, "alias, GGUF file or Hugging Face directory")
      ->envname("CONVEYOR_MODEL");
  cmd.add_option("--served-model-name", f.served_model_name,
                 "model name in results, and the one body.model must match");
  cmd.add_flag("--ignore-model-name", f.ignore_model_name, "do not check body.model");
  cmd.add_option("--backend", f.backend, "auto (cuda where a GPU answers), cpu or cuda")
      ->envname("CONVEYOR_BACKEND");
  cmd.add_option("--gpu-dtype", f.gpu_dtype,
                 "CUDA matrices: auto (as stored; f16 for GGUF-quantised), f16, bf16, f32");
  cmd.add_option("--gpu-memory-fraction", f.gpu_memory_fraction,
                 "CUDA: share of GPU memory reserved at start for weights, KV and activations");
  cmd.add_option("-t,--threads", f.threads, "CPU threads in all (default: every core)")
      ->envname("CONVEYOR_THREADS");
  if (in_process_stages) {
    cmd.add_option("--stages", f.stages, "pipeline stages (worker actors) in this process")
        ->envname("CONVEYOR_STAGES");
  }
  cmd.add_option("--kv-blocks", f.kv_blocks,
                 "KV cache blocks (default: as --kv-device-budget holds)");
  cmd.add_option("--kv-device-budget,--kv-memory", f.kv_memory,
                 "device memory of the KV cache, e.g. 512MiB (default: 1GiB on the CPU; on CUDA "
                 "what the weights and activations leave)")
      ->envname("CONVEYOR_KV_MEMORY");
  cmd.add_option("--kv-host-budget", f.kv_host_budget,
                 "host memory per stage where preempted sequences' K/V wait, e.g. 4GiB; 0: none "
                 "(default 1GiB)");
  cmd.add_option("--kv-disk-dir", f.kv_disk_dir,
                 "NVMe scratch directory for a disk tier of preempted sequences' K/V");
  cmd.add_option("--kv-disk-budget", f.kv_disk_budget,
                 "bytes of K/V per stage the disk tier holds, e.g. 64GiB (needs --kv-disk-dir)");
  cmd.add_option("--preemption", f.preemption,
                 "how a preempted sequence resumes: auto (by cost), swap or recompute");
  cmd.add_option("--block-size", f.block_size, "tokens per KV block");
  cmd.add_option(
      "--kv-dtype", f.kv_dtype,
      "K/V element type: auto (bf16 on CUDA), f32, bf16, fp8 (E4M3 with a scale per head "
      "and position; CUDA)");
  cmd.add_option("--weight-device-budget", f.weight_device_budget,
                 "memory for each stage's weights, e.g. 512MiB or 50%; the layers beyond it "
                 "stream in from the model file (default: 0, all resident)");
  cmd.add_option("--max-sequences,--max-num-seqs", f.max_sequences, "sequences running at once")
      ->envname("CONVEYOR_MAX_SEQUENCES");
  cmd.add_option("--max-step-tokens", f.max_step_tokens,
                 "tokens per step, prefill chunks and decodes together");
  cmd.add_option("--micro-batches", f.micro_batches, "steps in flight (default: one per stage)");
  cmd.add_flag("--static-batching", f.static_batching,
               "fixed batches: a new batch starts when the last has finished");
  cmd.add_flag("--no-prefix-caching", f.no_prefix_caching,
               "compute every prompt in full, even where it starts like another");
  cmd.add_flag("--no-prefix-ordering", f.no_prefix_ordering,
               "run a batch file in file order, not grouped by shared prompt prefix");
  cmd.add_option("--progress", f.progress, "auto, bar, jsonl or off")->envname("CONVEYOR_PROGRESS");
  cmd.add_option("--errors", f.errors,
                 "error JSONL (default: <output stem>.errors.jsonl beside the output)");
  if (in_process_stages) {  // the coordinator has its own (cluster.metrics_port)
    cmd.add_option("--metrics-port", f.metrics_port,
                   "serve Prometheus /metrics, /livez and /readyz on this port while the job runs")
        ->envname("CONVEYOR_METRICS_PORT");
  }
}

namespace {

template <typename T>
T value_or_throw(Expected<T> value, const std::string& flag) {
  if (!value.ok()) {
    throw Error(value.status().code(), flag + ": " + value.status().message());
  }
  return std::move(value).value();
}

}  // namespace

void apply_engine_flags(const EngineFlags& f, RunConfig& c) {
  if (f.model) c.model = *f.model;
  if (f.served_model_name) c.served_model_name = *f.served_model_name;
  if (f.ignore_model_name) c.check_model_name = false;
  if (f.backend) c.backend = value_or_throw(parse_backend(*f.backend), "--backend");
  if (f.gpu_memory_fraction) c.kv.gpu_memory_fraction = *f.gpu_memory_fraction;
  if (f.gpu_dtype) c.gpu_dtype = value_or_throw(parse_compute_dtype(*f.gpu_dtype), "--gpu-dtype");
  if (f.threads) c.threads = *f.threads;
  if (f.stages) c.stages = *f.stages;
  if (f.kv_blocks) c.kv.blocks = *f.kv_blocks;
  if (f.kv_memory) {
    c.kv.memory_bytes = value_or_throw(parse_size(*f.kv_memory), "--kv-device-budget");
  }
  if (f.kv_host_budget) {
    c.kv.host_budget_bytes = value_or_throw(parse_size(*f.kv_host_budget), "--kv-host-budget");
  }
  if (f.kv_disk_dir) c.kv.disk_dir = *f.kv_disk_dir;
  if (f.kv_disk_budget) {
    c.kv.disk_budget_bytes = value_or_throw(parse_size(*f.kv_disk_budget), "--kv-disk-budget");
  }
  if (f.preemption)
    c.kv.preemption = value_or_throw(parse_preemption(*f.preemption), "--preemption");
  if (f.block_size) c.kv.block_size = *f.block_size;
  if (f.kv_dtype) c.kv.dtype = value_or_throw(parse_kv_dtype(*f.kv_dtype), "--kv-dtype");
  if (f.weight_device_budget) {
    c.weights.device_budget =
        value_or_throw(parse_device_budget(*f.weight_device_budget), "--weight-device-budget");
  }
  if (f.max_sequences) c.scheduler.max_sequences = *f.max_sequences;
  if (f.max_step_tokens) c.scheduler.max_step_tokens = *f.max_step_tokens;
  if (f.micro_batches) c.scheduler.micro_batches = *f.micro_batches;
  if (f.static_batching) c.scheduler.static_batching = true;
  if (f.no_prefix_caching) c.kv.prefix_caching = false;
  if (f.no_prefix_ordering) c.kv.prefix_ordering = false;
  if (f.progress)
    c.output.progress = value_or_throw(parse_progress_mode(*f.progress), "--progress");
  if (f.errors) c.output.errors = *f.errors;
  if (f.metrics_port) c.output.metrics_port = *f.metrics_port;
  if (Status s = validate_run_config(c); !s.ok()) throw Error(s.code(), s.message());
}

RunConfig load_config_or_defaults(const std::string& file) {
  if (file.empty()) return RunConfig{};
  Expected<RunConfig> config = load_run_config(file);
  if (!config.ok()) throw Error(config.status().code(), config.status().message());
  return std::move(config).value();
}

std::vector<std::string> served_model_names(const RunConfig& config, const ModelSource& source) {
  // The file's (or directory's) name with and without its extensions:
  // "SmolLM2-135M-Instruct.Q4_1.gguf", "...Q4_1", and "SmolLM2-135M-Instruct", the
  // name a request most likely gives.
  std::vector<std::string> file_names;
  std::filesystem::path name = std::filesystem::path(source.path()).filename();
  file_names.push_back(name.string());
  for (; name.has_extension(); name = name.stem())
    file_names.push_back(name.stem().string());
  std::vector<std::string> names;
  if (!config.served_model_name.empty()) names.push_back(config.served_model_name);
  if (config.model.find('/') == std::string::npos) {
    names.push_back(config.model);
    names.insert(names.end(), file_names.rbegin(), file_names.rend());
  } else {
    names.insert(names.end(), file_names.rbegin(), file_names.rend());
    names.push_back(config.model);
  }
  return names;
}

KvPlan plan_kv(const RunConfig& config, const ModelSpec& spec, DType kv_dtype) {
  KvPlan kv;
  kv.context_limit = spec.max_positions;
  if (config.limits.max_context > 0 &&
      (kv.context_limit <= 0 || config.limits.max_context < kv.context_limit)) {
    kv.context_limit = config.limits.max_context;
  }
  KvCacheConfig geometry;
  geometry.num_layers = spec.num_layers;
  geometry.block_size = config.kv.block_size;
  geometry.kv_dim = spec.kv_dim();
  geometry.dtype = kv_dtype;
  geometry.num_kv_heads = spec.num_kv_heads;
  kv.block_bytes = kv_block_bytes(geometry);
  const std::uint64_t memory =
      config.kv.memory_bytes > 0 ? config.kv.memory_bytes : kDefaultCpuKvBytes;
  kv.blocks =
      config.kv.blocks > 0 ? config.kv.blocks : static_cast<std::int64_t>(memory / kv.block_bytes);
  if (kv.blocks < 1) {
    fail(ErrorCode::kInvalidArgument, "kv.memory holds no block: one block of " +
                                          std::to_string(config.kv.block_size) + " tokens takes " +
                                          std::to_string(kv.block_bytes) + " bytes");
  }
  // A sequence must fit the whole cache, or it could never finish even alone: when
  // the cache holds fewer tokens than the model's context, the cache is the context
  // (prompts beyond it are refused, outputs end with "length" there).
  const std::int64_t kv_tokens = kv.blocks * config.kv.block_size;
  kv.kv_limited = kv.context_limit <= 0 || kv_tokens < kv.context_limit;
  if (kv.kv_limited) kv.context_limit = kv_tokens;
  // A tier's slots start at kKvSlotAlignment boundaries (worker/kv_store/kv_tier.h).
  const std::uint64_t slot =
      (kv.block_bytes + kKvSlotAlignment - 1) / kKvSlotAlignment * kKvSlotAlignment;
  kv.host_swap_blocks = static_cast<std::int64_t>(config.kv.host_budget_bytes / slot);
  if (!config.kv.disk_dir.empty())
    kv.disk_swap_blocks = static_cast<std::int64_t>(config.kv.disk_budget_bytes / slot);
  return kv;
}

SchedulerActorOptions scheduler_options(const RunConfig& config, const ModelSpec& spec,
                                        std::shared_ptr<const Tokenizer> tokenizer,
                                        const KvPlan& kv) {
  SchedulerActorOptions options;
  options.scheduler.num_blocks = kv.blocks;
  options.scheduler.block_size = config.kv.block_size;
  options.scheduler.max_sequences = config.scheduler.max_sequences;
  options.scheduler.max_step_tokens = config.scheduler.max_step_tokens;
  options.scheduler.static_batching = config.scheduler.static_batching;
  options.scheduler.prefix_caching = config.kv.prefix_caching;
  options.scheduler.host_swap_blocks = kv.host_swap_blocks;
  options.scheduler.disk_swap_blocks = kv.disk_swap_blocks;
  options.scheduler.swap.mode =
      config.kv.preemption == PreemptionChoice::kSwap        ? PreemptionMode::kSwap
      : config.kv.preemption == PreemptionChoice::kRecompute ? PreemptionMode::kRecompute
                                                             : PreemptionMode::kAuto;
  options.scheduler.swap.costs.block_bytes = kv.block_bytes;
  options.micro_batches = config.scheduler.micro_batches;
  options.vocab_size = spec.vocab_size;
  options.context_limit = kv.context_limit;
  options.eos_ids = spec.eos_token_ids;
  options.tokenizer = std::move(tokenizer);
  return options;
}

BackendRequest backend_request(const RunConfig& config) {
  BackendRequest request;
  request.kind = config.backend == BackendChoice::kCpu    ? BackendKind::kCpu
                 : config.backend == BackendChoice::kCuda ? BackendKind::kCuda
                                                          : BackendKind::kAuto;
  request.kind = resolve(request.kind);
  request.threads = config.threads;
  request.gpu_memory_fraction = config.kv.gpu_memory_fraction;
  request.cuda_matrices = config.gpu_dtype == ComputeDtype::kF16    ? CudaMatrixType::kF16
                          : config.gpu_dtype == ComputeDtype::kBf16 ? CudaMatrixType::kBf16
                          : config.gpu_dtype == ComputeDtype::kF32  ? CudaMatrixType::kF32
                                                                    : CudaMatrixType::kAuto;
  return request;
}

DType kv_dtype(KvDtypeChoice choice, BackendKind backend) {
  if (choice == KvDtypeChoice::kF32) return DType::kF32;
  if (choice == KvDtypeChoice::kBf16) return DType::kBF16;
  if (choice == KvDtypeChoice::kFp8) {
    if (backend == BackendKind::kCpu) {
      fail(ErrorCode::kInvalidArgument,
           "kv dtype fp8: the FP8 K/V cache needs the CUDA backend (the CPU keeps f32 K/V)");
    }
    return DType::kF8_R;
  }
  return backend == BackendKind::kCuda ? DType::kBF16 : DType::kF32;
}

std::uint64_t activation_reserve_bytes(const RunConfig& config, const ModelSpec& spec) {
  // The model's f32 activations for the largest step (the workspace grows by doubling
  // and a grown buffer is allocated before the old one goes: three times), the logits
  // of every running sequence twice, bf16 GEMM inputs, and slack for the step
  // metadata and the RoPE table.
  const auto tokens = static_cast<std::uint64_t>(
      std::max(config.scheduler.max_step_tokens, config.scheduler.max_sequences));
  const auto per_token = static_cast<std::uint64_t>(3 * spec.hidden_size + 2 * spec.q_dim() +
                                                    2 * spec.kv_dim() + 2 * spec.intermediate_size);
  const auto logits = static_cast<std::uint64_t>(config.scheduler.max_sequences) *
                      static_cast<std::uint64_t>(spec.vocab_size) * 4;
  const std::uint64_t bf16_inputs =
      tokens * static_cast<std::uint64_t>(std::max(spec.hidden_size, spec.intermediate_size)) * 2;
  // Compressed weights' GEMM scratch, grown by doubling: the FP8 GEMM's activation codes
  // and its f32 sums of the widest product, and the f16 slab of a q8/q4 matrix that
  // prefill-sized products widen for cuBLASLt (128 MiB).
  const auto widest = static_cast<std::uint64_t>(
      std::max({spec.hidden_size, spec.intermediate_size, spec.q_dim()}));
  const std::uint64_t compressed_scratch = 2 * (tokens * widest * 5 + (128u << 20));
  return 3 * tokens * per_token * 4 + 2 * logits + 2 * bf16_inputs + compressed_scratch +
         (256u << 20);
}

Engine build_engine(const RunConfig& config) {
  std::shared_ptr<ModelSource> source = open_model_or_throw(config.model);
  std::vector<std::string> names = served_model_names(config, *source);
  return build_engine(config, std::move(source), std::move(names));
}

Engine build_engine(const RunConfig& config, std::shared_ptr<ModelSource> source,
                    std::vector<std::string> model_names) {
  Engine e;
  e.source = std::move(source);
  const ModelSpec& spec = e.source->spec();
  if (e.source->tokenizer().has_value()) {
    e.tokenizer = std::make_shared<Tokenizer>(*e.source->tokenizer());
    Expected<ChatTemplate> chat = chat_template_for(*e.source->tokenizer());
    if (chat.ok()) e.chat = std::move(chat).value();
  }
  e.model_names = std::move(model_names);
  LocalPipelineOptions pipeline;
  pipeline.stages = config.stages;
  pipeline.backend = backend_request(config);
  pipeline.weight_budget = {config.weights.device_budget.bytes,
                            config.weights.device_budget.fraction};
  // On a GPU the cache takes what the memory pool has left after the weights, unless
  // kv.blocks or kv.memory fixes it; on the CPU, kv.memory sizes it.
  const bool device_sized = pipeline.backend.kind == BackendKind::kCuda && config.kv.blocks == 0 &&
                            config.kv.memory_bytes == 0;
  const DType dtype = kv_dtype(config.kv.dtype, pipeline.backend.kind);
  RunConfig sized = config;
  const KvPlan planned = plan_kv(config, spec, dtype);
  if (!device_sized) {
    pipeline.kv = {planned.blocks, config.kv.block_size};
  } else {
    pipeline.kv = {0, config.kv.block_size, activation_reserve_bytes(config, spec)};
  }
  pipeline.kv.dtype = dtype;
  pipeline.kv.swap = {planned.host_swap_blocks, planned.disk_swap_blocks, config.kv.disk_dir};
  e.pipeline = std::make_unique<LocalPipeline>(*e.source, pipeline);
  sized.kv.blocks = e.pipeline->kv_blocks();
  const KvPlan kv = plan_kv(sized, spec, dtype);
  e.kv_blocks = kv.blocks;
  e.context_limit = kv.context_limit;
  SchedulerActorOptions actor_options = scheduler_options(config, spec, e.tokenizer, kv);
  if (config.output.metrics_port > 0) {
    Expected<std::unique_ptr<MetricsServer>> server =
        MetricsServer::start("0.0.0.0:" + std::to_string(config.output.metrics_port));
    if (!server.ok()) {
      throw Error(server.status().code(), "--metrics-port: " + server.status().message());
    }
    e.metrics_server = std::move(server).value();
    actor_options.metrics = std::make_shared<EngineMetrics>(e.metrics_server->registry());
    e.metrics_server->set_readiness([metrics = actor_options.metrics] { return metrics->ready(); });
    e.metrics_server->add_collectable(stage_metrics([pipeline = e.pipeline.get()] {
      std::vector<std::pair<std::map<std::string, std::string>, StageStats>> stages;
      for (const StageStats& s : pipeline->stage_stats())
        stages.push_back({{{"stage", std::to_string(stages.size())}}, s});
      return stages;
    }));
    std::fprintf(stderr, "[engine] metrics on http://%s/metrics (probes /livez, /readyz)\n",
                 e.metrics_server->address().c_str());
  }
  e.scheduler = std::make_unique<SchedulerActor>(*e.pipeline, std::move(actor_options));

  std::string stages;
  for (const LayerRange& r : e.pipeline->layer_ranges()) {
    stages +=
        (stages.empty() ? "" : ", ") + std::to_string(r.begin) + "-" + std::to_string(r.end - 1);
  }
  // Layers beyond the weight budget stream in from the model file for every step.
  const std::int64_t streamed = e.pipeline->streamed_layers();
  const std::string streaming =
      streamed == 0 ? ""
                    : " | " + std::to_string(streamed) + " layers stream in (weight budget " +
                          device_budget_string(config.weights.device_budget) + ")";
  // Where preempted sequences' K/V wait.
  std::string swapping = " | preemption " + std::string(to_string(config.kv.preemption));
  if (config.kv.preemption != PreemptionChoice::kRecompute) {
    swapping += ", swap to host " + std::to_string(kv.host_swap_blocks) + " blocks";
    if (kv.disk_swap_blocks > 0) {
      swapping +=
          ", disk " + std::to_string(kv.disk_swap_blocks) + " blocks in " + config.kv.disk_dir;
    }
  }
  std::fprintf(stderr,
               "[engine] %s (%s) | %s | layers %s | KV %lld blocks x %lld tokens (%.0f MiB, %s) | "
               "context %lld%s | %lld sequences, %lld tokens per step, %s batching%s%s\n",
               e.model_names.front().c_str(), e.source->format().c_str(),
               e.pipeline->backend_name().c_str(), stages.c_str(),
               static_cast<long long>(e.kv_blocks), static_cast<long long>(config.kv.block_size),
               static_cast<double>(kv.block_bytes) * static_cast<double>(e.kv_blocks) / (1 << 20),
               std::string(dtype_name(dtype)).c_str(), static_cast<long long>(e.context_limit),
               kv.kv_limited ? " (the KV cache)" : "",
               static_cast<long long>(config.scheduler.max_sequences),
               static_cast<long long>(config.scheduler.max_step_tokens),
               config.scheduler.static_batching ? "static" : "continuous", swapping.c_str(),
               streaming.c_str());
  return e;
}

}  // namespace conveyor::cli
