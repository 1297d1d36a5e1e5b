#include "common/config/run_config.h"

#include <yaml-cpp/yaml.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "common/config/yaml_section.h"

namespace conveyor {
namespace {

constexpr std::array<std::pair<BackendChoice, std::string_view>, 3> kBackendNames = {{
    {BackendChoice::kAuto, "auto"},
    {BackendChoice::kCpu, "cpu"},
    {BackendChoice::kCuda, "cuda"},
}};

constexpr std::array<std::pair<ComputeDtype, std::string_view>, 4> kComputeDtypeNames = {{
    {ComputeDtype::kAuto, "auto"},
    {ComputeDtype::kF16, "f16"},
    {ComputeDtype::kBf16, "bf16"},
    {ComputeDtype::kF32, "f32"},
}};

constexpr std::array<std::pair<KvDtypeChoice, std::string_view>, 4> kKvDtypeNames = {{
    {KvDtypeChoice::kAuto, "auto"},
    {KvDtypeChoice::kF32, "f32"},
    {KvDtypeChoice::kBf16, "bf16"},
    {KvDtypeChoice::kFp8, "fp8"},
}};

constexpr std::array<std::pair<PreemptionChoice, std::string_view>, 3> kPreemptionNames = {{
    {PreemptionChoice::kAuto, "auto"},
    {PreemptionChoice::kSwap, "swap"},
    {PreemptionChoice::kRecompute, "recompute"},
}};

constexpr std::array<std::pair<ProgressMode, std::string_view>, 4> kProgressNames = {{
    {ProgressMode::kAuto, "auto"},
    {ProgressMode::kBar, "bar"},
    {ProgressMode::kJsonl, "jsonl"},
    {ProgressMode::kOff, "off"},
}};

template <typename Enum, std::size_t N>
std::string_view name_of(const std::array<std::pair<Enum, std::string_view>, N>& names,
                         Enum value) {
  for (const auto& [candidate, name] : names) {
    if (candidate == value) return name;
  }
  return "unknown";
}

template <typename Enum, std::size_t N>
Expected<Enum> value_of(const std::array<std::pair<Enum, std::string_view>, N>& names,
                        std::string_view text, std::string_view what) {
  std::string accepted;
  for (const auto& [value, name] : names) {
    if (name == text) return value;
    accepted += (accepted.empty() ? "" : ", ") + std::string(name);
  }
  return Status(ErrorCode::kInvalidArgument, std::string("unknown ").append(what) + " '" +
                                                 std::string(text) + "' (expected " + accepted +
                                                 ")");
}

// Reads every key of the file into `config`, section by section; throws Error.
void read_config(YamlSection& top, RunConfig& config) {
  top.read("model", config.model);
  top.read("served_model_name", config.served_model_name);
  top.read("check_model_name", config.check_model_name);
  top.read_with("backend", config.backend, &parse_backend);
  top.read_with("gpu_dtype", config.gpu_dtype, &parse_compute_dtype);
  top.read("threads", config.threads);
  top.read("stages", config.stages);

  YamlSection kv = top.section("kv");
  kv.read("blocks", config.kv.blocks);
  kv.read_size("memory", config.kv.memory_bytes);
  kv.read("gpu_memory_fraction", config.kv.gpu_memory_fraction);
  kv.read("block_size", config.kv.block_size);
  kv.read_with("dtype", config.kv.dtype, &parse_kv_dtype);
  kv.read("prefix_caching", config.kv.prefix_caching);
  kv.read("prefix_ordering", config.kv.prefix_ordering);
  kv.read_size("host_budget", config.kv.host_budget_bytes);
  kv.read("disk_dir", config.kv.disk_dir);
  kv.read_size("disk_budget", config.kv.disk_budget_bytes);
  kv.read_with("preemption", config.kv.preemption, &parse_preemption);
  kv.finish();

  YamlSection weights = top.section("weights");
  weights.read_with("device_budget", config.weights.device_budget, &parse_device_budget);
  weights.finish();

  YamlSection scheduler = top.section("scheduler");
  scheduler.read("max_sequences", config.scheduler.max_sequences);
  scheduler.read("max_step_tokens", config.scheduler.max_step_tokens);
  scheduler.read("static_batching", config.scheduler.static_batching);
  scheduler.read("micro_batches", config.scheduler.micro_batches);
  scheduler.finish();

  YamlSection limits = top.section("limits");
  limits.read_size("max_line_bytes", config.limits.max_line_bytes);
  limits.read("max_context", config.limits.max_context);
  limits.read("default_max_tokens", config.limits.default_max_tokens);
  limits.read("max_n", config.limits.max_n);
  limits.finish();

  YamlSection output = top.section("output");
  output.read_with("progress", config.output.progress, &parse_progress_mode);
  output.read("progress_interval_seconds", config.output.progress_interval_seconds);
  output.read("errors", config.output.errors);
  output.read("metrics_port", config.output.metrics_port);
  output.finish();

  YamlSection cluster = top.section("cluster");
  cluster.read_with("stages", config.cluster.stages, &parse_stage_count);
  cluster.read("max_replicas", config.cluster.max_replicas);
  cluster.read("listen", config.cluster.listen);
  cluster.read("worker_listen", config.cluster.worker_listen);
  cluster.read("journal", config.cluster.journal);
  cluster.read("heartbeat_seconds", config.cluster.heartbeat_seconds);
  cluster.read("liveness_seconds", config.cluster.liveness_seconds);
  cluster.read("plan_delay_seconds", config.cluster.plan_delay_seconds);
  cluster.read("queue_limit", config.cluster.queue_limit);
  cluster.read_size("max_message_bytes", config.cluster.max_message_bytes);
  cluster.read("server_key", config.cluster.server_key);
  cluster.read("producer_keys", config.cluster.producer_keys);
  cluster.read("worker_keys", config.cluster.worker_keys);
  cluster.read("metrics_port", config.cluster.metrics_port);
  cluster.finish();

  top.finish();
}

RunConfig parse_or_throw(std::string_view yaml_text, std::string_view origin) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    throw Error(ErrorCode::kMalformed,
                yaml_position(origin, e.mark) + "YAML syntax error: " + e.msg);
  }
  RunConfig config;
  if (documents.empty()) return config;
  if (documents.size() > 1) {
    throw Error(ErrorCode::kInvalidArgument, std::string(origin) + ": holds " +
                                                 std::to_string(documents.size()) +
                                                 " YAML documents; a config file is one");
  }
  YamlSection top(documents.front(), "", std::string(origin));
  read_config(top, config);
  if (Status valid = validate_run_config(config); !valid.ok()) {
    throw Error(valid.code(), std::string(origin) + ": " + valid.message());
  }
  return config;
}

}  // namespace

std::string_view to_string(BackendChoice backend) {
  return name_of(kBackendNames, backend);
}
std::string_view to_string(ProgressMode mode) {
  return name_of(kProgressNames, mode);
}

Expected<BackendChoice> parse_backend(std::string_view text) {
  return value_of(kBackendNames, text, "backend");
}

std::string_view to_string(ComputeDtype dtype) {
  return name_of(kComputeDtypeNames, dtype);
}

Expected<ComputeDtype> parse_compute_dtype(std::string_view text) {
  return value_of(kComputeDtypeNames, text, "gpu dtype");
}

std::string_view to_string(KvDtypeChoice dtype) {
  return name_of(kKvDtypeNames, dtype);
}

Expected<KvDtypeChoice> parse_kv_dtype(std::string_view text) {
  return value_of(kKvDtypeNames, text, "kv dtype");
}

std::string_view to_string(PreemptionChoice preemption) {
  return name_of(kPreemptionNames, preemption);
}

Expected<PreemptionChoice> parse_preemption(std::string_view text) {
  return value_of(kPreemptionNames, text, "preemption");
}

Expected<ProgressMode> parse_progress_mode(std::string_view text) {
  return value_of(kProgressNames, text, "progress mode");
}

Expected<std::int64_t> parse_stage_count(std::string_view text) {
  if (text == "auto") return std::int64_t{0};
  std::int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || n > 1000000) {
      return Status(ErrorCode::kInvalidArgument,
                    "stages must be 'auto' or a positive number, not '" + std::string(text) + "'");
    }
    n = n * 10 + (c - '0');
  }
  if (text.empty() || n < 1) {
    return Status(ErrorCode::kInvalidArgument,
                  "stages must be 'auto' or a positive number, not '" + std::string(text) + "'");
  }
  return n;
}

Expected<RunConfig> parse_run_config(std::string_view yaml_text, std::string_view origin) {
  return to_expected([&] { return parse_or_throw(yaml_text, origin); });
}

Expected<RunConfig> load_run_config(const std::filesystem::path& file) {
  std::error_code ec;
  const auto type = std::filesystem::status(file, ec).type();
  if (type == std::filesystem::file_type::not_found) {
    return Status(ErrorCode::kNotFound, "config file " + file.string() + " does not exist");
  }
  // A directory opens as a stream that reads nothing: refuse it rather than use defaults.
  if (type == std::filesystem::file_type::directory) {
    return Status(ErrorCode::kInvalidArgument, "config file " + file.string() + " is a directory");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Status(ErrorCode::kIo,
                  "cannot read config file " + file.string() + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status(ErrorCode::kIo, "error reading config file " + file.string());
  return parse_run_config(text.str(), file.string());
}

}  // namespace conveyor
