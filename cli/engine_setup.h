// What `run` and `bench` share: the engine flags that override the config, and the
// engine they build: a model source, an in-process pipeline of worker actors and the
// coordinator's scheduler actor in front of it.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config/run_config.h"
#include "common/metrics/metrics_server.h"
#include "common/model_source.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"
#include "coordinator/local_pipeline.h"
#include "coordinator/scheduler_actor.h"

namespace conveyor::cli {

// Flags override the config file; unset ones leave it alone.
struct EngineFlags {
  std::optional<std::string> model;
  std::optional<std::string> served_model_name;
  bool ignore_model_name = false;
  std::optional<std::string> backend;
  std::optional<double> gpu_memory_fraction;
  std::optional<std::string> gpu_dtype;
  std::optional<int> threads;
  std::optional<int> stages;
  std::optional<std::int64_t> kv_blocks;
  std::optional<std::string> kv_memory;  // --kv-device-budget
  std::optional<std::string> kv_host_budget;
  std::optional<std::string> kv_disk_dir;
  std::optional<std::string> kv_disk_budget;
  std::optional<std::string> preemption;
  std::optional<std::string> weight_device_budget;
  std::optional<std::int64_t> block_size;
  std::optional<std::string> kv_dtype;
  std::optional<std::int64_t> max_sequences;
  std::optional<std::int64_t> max_step_tokens;
  std::optional<std::int64_t> micro_batches;
  bool static_batching = false;
  bool no_prefix_caching = false;
  bool no_prefix_ordering = false;
  std::optional<std::string> progress;
  std::optional<std::string> errors;
  std::optional<int> metrics_port;
};

// `in_process_stages`: false where --stages means something else (the coordinator's
// stages per replica).
void add_engine_flags(CLI::App& cmd, EngineFlags& flags, bool in_process_stages = true);
// Applies the flags, then validates the whole config. Throws Error naming the flag.
void apply_engine_flags(const EngineFlags& flags, RunConfig& config);
// The file's config, or the defaults when `file` is empty.
RunConfig load_config_or_defaults(const std::string& file);

struct Engine {
  std::shared_ptr<ModelSource> source;  // outlives the weights that map it
  std::shared_ptr<const Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat;
  std::vector<std::string> model_names;  // the served name first
  std::int64_t context_limit = 0;
  std::int64_t kv_blocks = 0;
  std::unique_ptr<LocalPipeline> pipeline;
  std::unique_ptr<SchedulerActor> scheduler;
  // Last, so that it stops first: its scrapes read the pipeline's stages.
  std::unique_ptr<MetricsServer> metrics_server;
};

// The names a request's body.model may give, the served name first: the served name
// when set, else an alias as given, else the file's bare name rather than a path.
std::vector<std::string> served_model_names(const RunConfig& config, const ModelSource& source);

// The K/V cache a replica gets from the config, and the context it allows.
struct KvPlan {
  std::int64_t blocks = 0;
  std::uint64_t block_bytes = 0;  // all layers
  std::int64_t context_limit = 0;
  bool kv_limited = false;  // the cache, not the model, limits the context
  // Slots of the swap tiers every stage keeps: the budget over a block of all layers,
  // so that no stage, however many layers it holds, exceeds its budget.
  std::int64_t host_swap_blocks = 0;
  std::int64_t disk_swap_blocks = 0;
};
// `kv_dtype`: the cache's element type (kv_dtype()).
KvPlan plan_kv(const RunConfig& config, const ModelSpec& spec, DType kv_dtype);
// The K/V element type a config asks for on `backend`: auto is bf16 on CUDA, f32 on
// the CPU.
DType kv_dtype(KvDtypeChoice choice, BackendKind backend);

// The backend the config asks for, `auto` resolved (CUDA where a device answers).
BackendRequest backend_request(const RunConfig& config);
// Device memory a CUDA stage keeps free beside its K/V cache for the activations of
// the largest step the scheduler may plan.
std::uint64_t activation_reserve_bytes(const RunConfig& config, const ModelSpec& spec);

// The scheduler actor's options for a replica with the cache `kv`.
SchedulerActorOptions scheduler_options(const RunConfig& config, const ModelSpec& spec,
                                        std::shared_ptr<const Tokenizer> tokenizer,
                                        const KvPlan& kv);

// Opens config.model and builds the engine on it; prints one line describing it.
Engine build_engine(const RunConfig& config);
// The same on a given source (bench's random-weight models).
Engine build_engine(const RunConfig& config, std::shared_ptr<ModelSource> source,
                    std::vector<std::string> model_names);

}  // namespace conveyor::cli
