// The configuration of `conveyor run`: defaults here, overridden by a YAML file
// (config/local.yaml lists every key), then by command-line flags.
//
// The YAML keys mirror the struct in snake_case; nested structs are nested mappings
// (`kv: {block_size: 16}`). Parsing is strict: an unknown key, a value of the wrong type or a
// duplicate key is an error that names the file, the line and the full key path, because a
// typo that silently keeps a default is worse than a refusal.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/config/device_budget.h"
#include "common/status.h"

namespace conveyor {

enum class BackendChoice { kAuto, kCpu, kCuda };
// The type of the CUDA backend's weight matrices (and of the GEMM inputs): auto keeps
// the stored type (f32, bf16), f16 for f16 and GGUF block-quantised weights.
enum class ComputeDtype { kAuto, kF16, kBf16, kF32 };
// The K/V cache's element type; auto: bf16 on the CUDA backend, f32 on the CPU.
enum class KvDtypeChoice { kAuto, kF32, kBf16, kFp8 };
inline constexpr std::uint64_t kDefaultCpuKvBytes = 1ull << 30;

// How a sequence preempted for K/V space resumes (coordinator/scheduler/policies.h).
enum class PreemptionChoice { kAuto, kSwap, kRecompute };
enum class ProgressMode { kAuto, kBar, kJsonl, kOff };

struct RunConfig {
  std::string model;              // alias, GGUF file or HF directory; "" = must come from --model
  std::string served_model_name;  // name in outputs, the one body.model must match; "" = derived
  bool check_model_name = true;   // false: body.model is ignored
  BackendChoice backend = BackendChoice::kAuto;
  ComputeDtype gpu_dtype = ComputeDtype::kAuto;  // the CUDA backend's matrices; the CPU uses f32
  int threads = 0;                               // CPU threads, 0 = all
  int stages = 1;                                // pipeline stages in this process

  struct Kv {
    std::int64_t blocks = 0;  // 0: as many as memory_bytes holds
    // YAML key `memory`, a size such as "1GiB": the device cache of all stages
    // together. 0: kDefaultCpuKvBytes on the CPU; on CUDA, what the memory pool has
    // left after the weights and the activations.
    std::uint64_t memory_bytes = 0;
    double gpu_memory_fraction = 0.9;  // share of free GPU memory for weights + KV (CUDA)
    std::int64_t block_size = 16;      // tokens per KV block; a power of two
    KvDtypeChoice dtype = KvDtypeChoice::kAuto;
    bool prefix_caching = true;  // reuse the K/V of prompt prefixes already computed
    // Run a batch file's requests grouped by shared prompt prefix (with prefix caching,
    // on a regular file); false keeps file order.
    bool prefix_ordering = true;
    // Swap tiers below the device cache, per worker (each stage in this process): a
    // preempted sequence's K/V wait there instead of being recomputed.
    std::uint64_t host_budget_bytes = 1ull << 30;  // YAML key `host_budget`; 0: no host tier
    std::string disk_dir;                          // NVMe scratch directory; "": no disk tier
    std::uint64_t disk_budget_bytes = 0;           // YAML key `disk_budget`
    PreemptionChoice preemption = PreemptionChoice::kAuto;
    friend bool operator==(const Kv&, const Kv&) = default;
  } kv;

  struct Weights {
    // Backend memory for each stage's weights: YAML `device_budget`, a size ("512MiB")
    // or a share of the stage's weights ("50%"); 0 = all resident. The layers beyond it
    // stay in the memory-mapped file and stream in ahead of use.
    DeviceBudget device_budget;
    friend bool operator==(const Weights&, const Weights&) = default;
  } weights;

  struct Scheduler {
    std::int64_t max_sequences = 64;
    std::int64_t max_step_tokens = 512;
    bool static_batching = false;
    std::int64_t micro_batches = 0;  // 0: one per stage
    friend bool operator==(const Scheduler&, const Scheduler&) = default;
  } scheduler;

  struct Limits {
    std::uint64_t max_line_bytes = 1 << 20;  // a size such as "1MiB"
    std::int64_t max_context = 0;            // 0: the model's
    std::int32_t default_max_tokens = 1024;
    std::int32_t max_n = 16;
    friend bool operator==(const Limits&, const Limits&) = default;
  } limits;

  struct Output {
    ProgressMode progress = ProgressMode::kAuto;
    double progress_interval_seconds = 5.0;
    std::string errors;    // error file; "" = next to the output
    int metrics_port = 0;  // `run` and `bench`: Prometheus /metrics, /livez, /readyz; 0 = none
    friend bool operator==(const Output&, const Output&) = default;
  } output;

  // `conveyor coordinator` and `conveyor worker`: the processes of a cluster.
  struct Cluster {
    std::int64_t stages = 0;                    // per pipeline replica; YAML `auto` (0) or a number
    std::int64_t max_replicas = 0;              // 0: as many as the workers allow
    std::string listen = "tcp://0.0.0.0:5555";  // producers' ROUTER
    std::string worker_listen = "tcp://0.0.0.0:5556";  // workers' ROUTER
    std::string journal = "conveyor-journal";          // directory
    double heartbeat_seconds = 1.0;
    double liveness_seconds = 5.0;      // silence after which a worker (or coordinator) is dead
    double plan_delay_seconds = 1.0;    // wait after a membership change for others to join
    std::int64_t queue_limit = 100000;  // accepted requests not yet finished; beyond: BUSY
    std::uint64_t max_message_bytes = 64ull << 20;  // ZMQ_MAXMSGSIZE on both sockets
    // CurveZMQ: key files (Kubernetes Secrets), never the keys themselves. All empty:
    // no encryption. server_key set: both sockets encrypt and admit only listed keys.
    std::string server_key;     // the coordinator's key-pair file
    std::string producer_keys;  // a directory of *.pub files or a file of public keys
    std::string worker_keys;
    int metrics_port = 0;  // 0: no metrics server
    friend bool operator==(const Cluster&, const Cluster&) = default;
  } cluster;

  friend bool operator==(const RunConfig&, const RunConfig&) = default;
};

// "auto" -> 0, a positive number -> itself.
Expected<std::int64_t> parse_stage_count(std::string_view text);

// Defaults overridden by `file`; kNotFound when it does not exist, kIo when unreadable.
Expected<RunConfig> load_run_config(const std::filesystem::path& file);

// Defaults overridden by `yaml_text`; `origin` (a file name) prefixes every message:
// "config/local.yaml:7: unknown key 'scheduler.max_step_tokenz'". Empty text (or only
// comments) gives the defaults, and a key with no value keeps its default. The result is
// validated; callers that then apply flags must call validate_run_config again.
// Errors: kMalformed (YAML syntax), kInvalidArgument (unknown key, wrong type), kOutOfRange.
Expected<RunConfig> parse_run_config(std::string_view yaml_text, std::string_view origin);

// Range and consistency checks (kOutOfRange); the message names the YAML key path.
Status validate_run_config(const RunConfig& config);

std::string_view to_string(BackendChoice backend);
std::string_view to_string(ProgressMode mode);
std::string_view to_string(KvDtypeChoice dtype);
std::string_view to_string(PreemptionChoice preemption);
std::string_view to_string(ComputeDtype dtype);
// The lower-case names that to_string gives; kInvalidArgument lists the accepted ones.
Expected<BackendChoice> parse_backend(std::string_view text);
Expected<ProgressMode> parse_progress_mode(std::string_view text);
Expected<KvDtypeChoice> parse_kv_dtype(std::string_view text);
Expected<PreemptionChoice> parse_preemption(std::string_view text);
Expected<ComputeDtype> parse_compute_dtype(std::string_view text);

}  // namespace conveyor
