#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/config/run_config.h"

using namespace conveyor;

namespace {

RunConfig parse_ok(const std::string& yaml) {
  Expected<RunConfig> config = parse_run_config(yaml, "test.yaml");
  INFO(yaml, "\n-> ", config.status().to_string());
  REQUIRE(config.ok());
  return *config;
}

// The message of a config that must fail with `code`.
std::string parse_error(const std::string& yaml, ErrorCode code = ErrorCode::kInvalidArgument) {
  Expected<RunConfig> config = parse_run_config(yaml, "test.yaml");
  INFO(yaml);
  REQUIRE(!config.ok());
  CHECK(config.status().code() == code);
  return config.status().message();
}

bool contains(const std::string& text, const std::string& part) {
  INFO("'", text, "' should contain '", part, "'");
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("config/local.yaml lists the defaults") {
  Expected<RunConfig> config =
      load_run_config(std::filesystem::path(CONVEYOR_SOURCE_DIR) / "config" / "local.yaml");
  INFO(config.status().to_string());
  REQUIRE(config.ok());
  CHECK(*config == RunConfig{});
}

TEST_CASE("config/cluster.yaml loads") {
  Expected<RunConfig> config =
      load_run_config(std::filesystem::path(CONVEYOR_SOURCE_DIR) / "config" / "cluster.yaml");
  INFO(config.status().to_string());
  REQUIRE(config.ok());
  CHECK(config->cluster.stages == 0);
  CHECK(config->cluster.listen == "tcp://0.0.0.0:5555");
}

TEST_CASE("the cluster section: every key, stages auto or a number, and its limits") {
  const RunConfig config = parse_ok(R"(
cluster:
  stages: 3
  max_replicas: 2
  listen: tcp://127.0.0.1:7000
  worker_listen: tcp://127.0.0.1:7001
  journal: /tmp/j
  heartbeat_seconds: 0.5
  liveness_seconds: 2
  plan_delay_seconds: 0
  queue_limit: 10
  max_message_bytes: 1MiB
  server_key: s.key
  producer_keys: producers
  worker_keys: workers
  metrics_port: 9090
)");
  const RunConfig::Cluster& c = config.cluster;
  CHECK(c.stages == 3);
  CHECK(c.max_replicas == 2);
  CHECK(c.listen == "tcp://127.0.0.1:7000");
  CHECK(c.worker_listen == "tcp://127.0.0.1:7001");
  CHECK(c.journal == "/tmp/j");
  CHECK(c.heartbeat_seconds == 0.5);
  CHECK(c.liveness_seconds == 2);
  CHECK(c.plan_delay_seconds == 0);
  CHECK(c.queue_limit == 10);
  CHECK(c.max_message_bytes == (1u << 20));
  CHECK(c.server_key == "s.key");
  CHECK(c.producer_keys == "producers");
  CHECK(c.worker_keys == "workers");
  CHECK(c.metrics_port == 9090);
  CHECK(parse_ok("cluster:\n  stages: auto\n").cluster.stages == 0);

  const auto refused = [](const char* yaml, const char* words) {
    Expected<RunConfig> parsed = parse_run_config(yaml, "c.yaml");
    REQUIRE_FALSE(parsed.ok());
    INFO(parsed.status().message());
    CHECK(parsed.status().message().find(words) != std::string::npos);
  };
  refused("cluster:\n  stages: many\n", "stages must be 'auto' or a positive number");
  refused("cluster:\n  stages: 0\n", "stages must be 'auto' or a positive number");
  refused("cluster:\n  heartbeat_seconds: 1\n  liveness_seconds: 1.5\n",
          "cluster.liveness_seconds must be at least twice");
  refused("cluster:\n  queue_limit: 0\n", "cluster.queue_limit");
  refused("cluster:\n  server_key: s.key\n", "go together");
  refused("cluster:\n  producer_keys: p\n", "go together");
  refused("cluster:\n  metrics_port: 70000\n", "cluster.metrics_port");
  refused("cluster:\n  listne: tcp://x:1\n", "cluster.listne");
}

TEST_CASE("an empty file, only comments, or empty sections give the defaults") {
  CHECK(parse_ok("") == RunConfig{});
  CHECK(parse_ok("# nothing\n\n") == RunConfig{});
  CHECK(parse_ok("kv:\nscheduler: {}\nmodel:\n") == RunConfig{});
}

TEST_CASE("every key is read") {
  const RunConfig config = parse_ok(R"(
model: smollm2-135m-instruct
served_model_name: small
check_model_name: false
backend: cuda
threads: 8
stages: 2
kv:
  blocks: 4096
  memory: 2GiB
  gpu_memory_fraction: 0.5
  block_size: 32
  prefix_ordering: false
scheduler:
  max_sequences: 128
  max_step_tokens: 2k
  static_batching: yes
  micro_batches: 4
limits:
  max_line_bytes: 4MiB
  max_context: 8192
  default_max_tokens: 256
  max_n: 4
output:
  progress: jsonl
  progress_interval_seconds: 0.5
  errors: /tmp/errors.jsonl
)");
  CHECK(config.model == "smollm2-135m-instruct");
  CHECK(config.served_model_name == "small");
  CHECK(!config.check_model_name);
  CHECK(config.backend == BackendChoice::kCuda);
  CHECK(config.threads == 8);
  CHECK(config.stages == 2);
  CHECK(config.kv.blocks == 4096);
  CHECK(config.kv.memory_bytes == 2ull << 30);
  CHECK(config.kv.gpu_memory_fraction == 0.5);
  CHECK(config.kv.block_size == 32);
  CHECK(config.kv.prefix_caching);
  CHECK_FALSE(config.kv.prefix_ordering);
  CHECK(config.scheduler.max_sequences == 128);
  CHECK(config.scheduler.max_step_tokens == 2000);
  CHECK(config.scheduler.static_batching);
  CHECK(config.scheduler.micro_batches == 4);
  CHECK(config.limits.max_line_bytes == 4ull << 20);
  CHECK(config.limits.max_context == 8192);
  CHECK(config.limits.default_max_tokens == 256);
  CHECK(config.limits.max_n == 4);
  CHECK(config.output.progress == ProgressMode::kJsonl);
  CHECK(config.output.progress_interval_seconds == 0.5);
  CHECK(config.output.errors == "/tmp/errors.jsonl");
}

TEST_CASE("sizes may be plain integers; YAML spellings of booleans and flow mappings work") {
  const RunConfig config = parse_ok(
      "kv: {memory: 1048576}\nlimits: {max_line_bytes: 65536}\ncheck_model_name: off\n"
      "output: {progress: off}\n");
  CHECK(config.kv.memory_bytes == 1048576);
  CHECK(config.limits.max_line_bytes == 65536);
  CHECK(!config.check_model_name);
  CHECK(config.output.progress == ProgressMode::kOff);
}

TEST_CASE("unknown keys name the file, the line and the full key path") {
  CHECK(contains(parse_error("model: a\nmodle: b\n"), "test.yaml:2: unknown key 'modle'"));
  const std::string nested = parse_error("scheduler:\n  max_step_tokenz: 5\n");
  CHECK(contains(nested, "test.yaml:2: unknown key 'scheduler.max_step_tokenz'"));
  CHECK(contains(nested, "max_step_tokens"));  // the message lists the keys that exist
  CHECK(contains(parse_error("kv: {blockz: 1}"), "unknown key 'kv.blockz'"));
  CHECK(contains(parse_error("limits: {max_lines: 1}"), "unknown key 'limits.max_lines'"));
  CHECK(contains(parse_error("output: {colour: red}"), "unknown key 'output.colour'"));
  CHECK(contains(parse_error("workers: 3"), "unknown key 'workers'"));
}

TEST_CASE("duplicate keys and non-mapping documents are refused") {
  CHECK(contains(parse_error("threads: 1\nthreads: 2\n"), "test.yaml:2: duplicate key 'threads'"));
  CHECK(contains(parse_error("kv:\n  blocks: 1\n  blocks: 2\n"), "duplicate key 'kv.blocks'"));
  CHECK(contains(parse_error("- model: a\n"), "the top level must be a mapping"));
  CHECK(contains(parse_error("just text"), "the top level must be a mapping"));
  CHECK(contains(parse_error("kv: 5\n"), "'kv' must be a mapping"));
  CHECK(contains(parse_error("model: a\n---\nmodel: b\n"), "2 YAML documents"));
}

TEST_CASE("wrong types say what the key must be") {
  CHECK(contains(parse_error("kv:\n  block_size: big\n"),
                 "test.yaml:2: kv.block_size must be an integer, got 'big'"));
  CHECK(contains(parse_error("threads: 1.5"), "threads must be an integer"));
  CHECK(contains(parse_error("stages: [1, 2]"), "stages must be an integer, got a list"));
  CHECK(contains(parse_error("model: {a: 1}"), "model must be a string, got a mapping"));
  CHECK(contains(parse_error("check_model_name: maybe"), "check_model_name must be true or false"));
  CHECK(contains(parse_error("scheduler: {static_batching: 1}"),
                 "scheduler.static_batching must be true or false"));
  CHECK(contains(parse_error("kv: {gpu_memory_fraction: most}"),
                 "kv.gpu_memory_fraction must be a number, got 'most'"));
  CHECK(contains(parse_error("kv: {memory: lots}"), "kv.memory: expected a size in bytes"));
  CHECK(contains(parse_error("limits: {max_line_bytes: -1}"), "limits.max_line_bytes"));
  CHECK(contains(parse_error("backend: gpu"), "backend: unknown backend 'gpu'"));
  CHECK(contains(parse_error("output: {progress: fancy}"), "output.progress: unknown progress"));
  CHECK(contains(parse_error("output: {errors: [a]}"), "output.errors must be a string"));
}

TEST_CASE("integers that do not fit their field are out of range") {
  CHECK(contains(parse_error("threads: 3000000000", ErrorCode::kOutOfRange),
                 "threads is out of range"));
  CHECK(contains(parse_error("limits: {max_n: 5G}", ErrorCode::kOutOfRange),
                 "limits.max_n is out of range"));
  CHECK(contains(parse_error("kv: {blocks: 99999999999999999999}", ErrorCode::kOutOfRange),
                 "kv.blocks is out of range"));
  CHECK(contains(parse_error("kv: {memory: 99999999TiB}", ErrorCode::kOutOfRange), "kv.memory"));
}

TEST_CASE("a YAML syntax error gives file:line") {
  const std::string message =
      parse_error("model: a\nkv:\n  blocks: [1, 2\n", ErrorCode::kMalformed);
  CHECK(contains(message, "test.yaml:"));
  CHECK(contains(message, "YAML syntax error"));
  CHECK(contains(parse_error("model: a\nthreads: 1: 2\n", ErrorCode::kMalformed), "test.yaml:2:"));
  CHECK(contains(parse_error("model: a\n\tthreads: 1\n", ErrorCode::kMalformed), "test.yaml:2:"));
}

TEST_CASE("a parsed file is validated, with the file name in the message") {
  CHECK(contains(parse_error("stages: 0", ErrorCode::kOutOfRange),
                 "test.yaml: stages must be between 1 and 256, got 0"));
}

TEST_CASE("validation ranges") {
  CHECK(validate_run_config(RunConfig{}).ok());

  struct Case {
    const char* key;
    void (*change)(RunConfig&);
  };
  const Case invalid[] = {
      {"threads", [](RunConfig& c) { c.threads = -1; }},
      {"threads", [](RunConfig& c) { c.threads = 5000; }},
      {"stages", [](RunConfig& c) { c.stages = 0; }},
      {"stages", [](RunConfig& c) { c.stages = 257; }},
      {"kv.blocks", [](RunConfig& c) { c.kv.blocks = -1; }},
      {"kv.disk_budget", [](RunConfig& c) { c.kv.disk_budget_bytes = 1 << 20; }},
      {"kv.gpu_memory_fraction", [](RunConfig& c) { c.kv.gpu_memory_fraction = 0; }},
      {"kv.gpu_memory_fraction", [](RunConfig& c) { c.kv.gpu_memory_fraction = 1.01; }},
      {"kv.gpu_memory_fraction", [](RunConfig& c) { c.kv.gpu_memory_fraction = 0.0 / 0.0; }},
      {"kv.block_size", [](RunConfig& c) { c.kv.block_size = 0; }},
      {"kv.block_size", [](RunConfig& c) { c.kv.block_size = 24; }},
      {"kv.block_size", [](RunConfig& c) { c.kv.block_size = 2048; }},
      {"kv.block_size", [](RunConfig& c) { c.kv.block_size = -16; }},
      {"scheduler.max_sequences", [](RunConfig& c) { c.scheduler.max_sequences = 0; }},
      {"scheduler.max_step_tokens", [](RunConfig& c) { c.scheduler.max_step_tokens = 0; }},
      {"scheduler.micro_batches", [](RunConfig& c) { c.scheduler.micro_batches = -1; }},
      {"scheduler.micro_batches", [](RunConfig& c) { c.scheduler.micro_batches = 65; }},
      {"limits.max_line_bytes", [](RunConfig& c) { c.limits.max_line_bytes = 0; }},
      {"limits.max_line_bytes", [](RunConfig& c) { c.limits.max_line_bytes = (1ull << 30) + 1; }},
      {"limits.max_context", [](RunConfig& c) { c.limits.max_context = -1; }},
      {"limits.default_max_tokens", [](RunConfig& c) { c.limits.default_max_tokens = 0; }},
      {"limits.max_n", [](RunConfig& c) { c.limits.max_n = 0; }},
      {"output.progress_interval_seconds",
       [](RunConfig& c) { c.output.progress_interval_seconds = -1; }},
      {"output.progress_interval_seconds",
       [](RunConfig& c) { c.output.progress_interval_seconds = 1.0 / 0.0; }},
  };
  for (const Case& test : invalid) {
    RunConfig config;
    test.change(config);
    const Status status = validate_run_config(config);
    INFO(test.key, ": ", status.to_string());
    REQUIRE(!status.ok());
    CHECK(status.code() == ErrorCode::kOutOfRange);
    CHECK(status.message().rfind(test.key, 0) == 0);  // the message starts with the key
  }

  const Case valid[] = {
      {"edges",
       [](RunConfig& c) {
         c.threads = 4096;
         c.stages = 256;
         c.kv.block_size = 1;
         c.kv.gpu_memory_fraction = 1;
         c.scheduler.micro_batches = c.scheduler.max_sequences;
         c.limits.max_line_bytes = 1;
         c.output.progress_interval_seconds = 0;
       }},
      {"kv.memory 0 is automatic", [](RunConfig& c) { c.kv.memory_bytes = 0; }},
      {"a disk tier with its directory",
       [](RunConfig& c) {
         c.kv.disk_dir = "/var/tmp";
         c.kv.disk_budget_bytes = 1 << 30;
       }},
      {"kv.block_size 1024", [](RunConfig& c) { c.kv.block_size = 1024; }},
  };
  for (const Case& test : valid) {
    RunConfig config;
    test.change(config);
    const Status status = validate_run_config(config);
    INFO(test.key, ": ", status.to_string());
    CHECK(status.ok());
  }
}

TEST_CASE("names of backends and progress modes round-trip") {
  for (BackendChoice backend : {BackendChoice::kAuto, BackendChoice::kCpu, BackendChoice::kCuda}) {
    CHECK(*parse_backend(to_string(backend)) == backend);
  }
  for (ProgressMode mode :
       {ProgressMode::kAuto, ProgressMode::kBar, ProgressMode::kJsonl, ProgressMode::kOff}) {
    CHECK(*parse_progress_mode(to_string(mode)) == mode);
  }
  Expected<BackendChoice> bad = parse_backend("gpu");
  REQUIRE(!bad.ok());
  CHECK(contains(bad.status().message(), "expected auto, cpu, cuda"));
  CHECK(contains(parse_progress_mode("json").status().message(), "expected auto, bar, jsonl, off"));
}

TEST_CASE("load_run_config: missing files, directories and the file name in messages") {
  const auto dir = std::filesystem::temp_directory_path() / "conveyor-config-test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  CHECK(load_run_config(dir / "absent.yaml").status().code() == ErrorCode::kNotFound);
  CHECK(load_run_config(dir).status().code() == ErrorCode::kInvalidArgument);

  const auto file = dir / "job.yaml";
  { std::ofstream(file) << "threads: 2\nscheduler:\n  max_step_tokenz: 1\n"; }
  Expected<RunConfig> typo = load_run_config(file);
  REQUIRE(!typo.ok());
  CHECK(contains(typo.status().message(),
                 file.string() + ":3: unknown key 'scheduler.max_step_tokenz'"));

  { std::ofstream(file) << "threads: 2\n"; }
  Expected<RunConfig> config = load_run_config(file);
  REQUIRE(config.ok());
  CHECK(config->threads == 2);

  std::filesystem::remove_all(dir);
}

TEST_CASE("gpu_dtype and kv.dtype take their names and refuse others") {
  const auto parsed = parse_run_config("gpu_dtype: f16\nkv:\n  dtype: bf16\n", "test.yaml");
  REQUIRE(parsed.ok());
  CHECK(parsed->gpu_dtype == ComputeDtype::kF16);
  CHECK(parsed->kv.dtype == KvDtypeChoice::kBf16);
  CHECK_FALSE(parse_run_config("gpu_dtype: fp8\n", "test.yaml").ok());
  CHECK_FALSE(parse_run_config("kv:\n  dtype: q8\n", "test.yaml").ok());
  for (ComputeDtype d :
       {ComputeDtype::kAuto, ComputeDtype::kF16, ComputeDtype::kBf16, ComputeDtype::kF32}) {
    CHECK(*parse_compute_dtype(to_string(d)) == d);
  }
  for (KvDtypeChoice d :
       {KvDtypeChoice::kAuto, KvDtypeChoice::kF32, KvDtypeChoice::kBf16, KvDtypeChoice::kFp8})
    CHECK(*parse_kv_dtype(to_string(d)) == d);
  CHECK(parse_run_config("kv:\n  dtype: fp8\n", "test.yaml")->kv.dtype == KvDtypeChoice::kFp8);
}
