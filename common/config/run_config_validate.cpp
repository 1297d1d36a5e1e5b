// validate_run_config: the ranges a RunConfig must keep, whatever set it (file or flags).
// Each bound is either a rule of the engine (block_size is a power of two so that a position
// splits into block and offset with a shift and a mask) or a sanity limit far above real use
// that keeps later arithmetic (blocks x block bytes, tokens x sequences) from overflowing.
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include "common/config/run_config.h"

namespace conveyor {
namespace {

constexpr std::int64_t kMaxThreads = 4096;
constexpr std::int64_t kMaxStages = 256;
constexpr std::int64_t kMaxBlockSize = 1024;
constexpr std::int64_t kMaxSequences = 1 << 20;
constexpr std::int64_t kMaxStepTokens = 1 << 20;
constexpr std::uint64_t kMaxLineBytes = 1ull << 30;
constexpr std::int64_t kMaxContext = 1ll << 30;

// Collects the first violation; later checks are skipped once one failed.
class RangeCheck {
 public:
  void between(const char* key, std::int64_t value, std::int64_t min, std::int64_t max) {
    if (!status_.ok() || (value >= min && value <= max)) return;
    status_ = Status(ErrorCode::kOutOfRange,
                     std::string(key) + " must be between " + std::to_string(min) + " and " +
                         std::to_string(max) + ", got " + std::to_string(value));
  }
  void at_least(const char* key, std::int64_t value, std::int64_t min) {
    if (!status_.ok() || value >= min) return;
    status_ = Status(ErrorCode::kOutOfRange, std::string(key) + " must be " + std::to_string(min) +
                                                 " or more, got " + std::to_string(value));
  }
  void require(bool holds, const std::string& message) {
    if (status_.ok() && !holds) status_ = Status(ErrorCode::kOutOfRange, message);
  }
  Status status() const { return status_; }

 private:
  Status status_;
};

bool is_power_of_two(std::int64_t value) {
  return value > 0 && (value & (value - 1)) == 0;
}

// Shortest form ("0.9", "inf", "nan"), not std::to_string's fixed six decimals.
std::string number(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

}  // namespace

Status validate_run_config(const RunConfig& config) {
  RangeCheck check;
  check.between("threads", config.threads, 0, kMaxThreads);
  check.between("stages", config.stages, 1, kMaxStages);

  check.at_least("kv.blocks", config.kv.blocks, 0);
  check.require(config.kv.disk_budget_bytes == 0 || !config.kv.disk_dir.empty(),
                "kv.disk_budget needs kv.disk_dir: the directory the disk tier's file goes in");
  const double fraction = config.kv.gpu_memory_fraction;
  check.require(std::isfinite(fraction) && fraction > 0 && fraction <= 1,
                "kv.gpu_memory_fraction must be in (0, 1], got " + number(fraction));
  check.require(is_power_of_two(config.kv.block_size) && config.kv.block_size <= kMaxBlockSize,
                "kv.block_size must be a power of two from 1 to " + std::to_string(kMaxBlockSize) +
                    ", got " + std::to_string(config.kv.block_size));

  const double share = config.weights.device_budget.fraction;
  check.require(std::isfinite(share) && share >= 0 && share <= 1,
                "weights.device_budget must be a share in (0%, 100%], got " + number(share));

  check.between("scheduler.max_sequences", config.scheduler.max_sequences, 1, kMaxSequences);
  check.between("scheduler.max_step_tokens", config.scheduler.max_step_tokens, 1, kMaxStepTokens);
  // More micro-batches than sequences would leave some of them empty.
  check.between("scheduler.micro_batches", config.scheduler.micro_batches, 0,
                config.scheduler.max_sequences);

  check.require(config.limits.max_line_bytes > 0 && config.limits.max_line_bytes <= kMaxLineBytes,
                "limits.max_line_bytes must be between 1 byte and 1GiB, got " +
                    std::to_string(config.limits.max_line_bytes));
  check.between("limits.max_context", config.limits.max_context, 0, kMaxContext);
  check.at_least("limits.default_max_tokens", config.limits.default_max_tokens, 1);
  check.at_least("limits.max_n", config.limits.max_n, 1);

  const double interval = config.output.progress_interval_seconds;
  check.require(std::isfinite(interval) && interval >= 0,
                "output.progress_interval_seconds must be 0 or more, got " + number(interval));

  check.between("output.metrics_port", config.output.metrics_port, 0, 65535);

  const RunConfig::Cluster& c = config.cluster;
  check.between("cluster.stages", c.stages, 0, 4096);
  check.at_least("cluster.max_replicas", c.max_replicas, 0);
  check.require(
      std::isfinite(c.heartbeat_seconds) && c.heartbeat_seconds >= 0.01,
      "cluster.heartbeat_seconds must be at least 0.01, got " + number(c.heartbeat_seconds));
  check.require(std::isfinite(c.liveness_seconds) && c.liveness_seconds >= 2 * c.heartbeat_seconds,
                "cluster.liveness_seconds must be at least twice cluster.heartbeat_seconds, got " +
                    number(c.liveness_seconds));
  check.require(
      std::isfinite(c.plan_delay_seconds) && c.plan_delay_seconds >= 0,
      "cluster.plan_delay_seconds must be 0 or more, got " + number(c.plan_delay_seconds));
  check.at_least("cluster.queue_limit", c.queue_limit, 1);
  check.require(c.max_message_bytes >= 4096,
                "cluster.max_message_bytes must be at least 4KiB, got " +
                    std::to_string(c.max_message_bytes));
  // Encryption without a list of admitted keys would admit anyone with a key pair.
  const bool any_key = !c.server_key.empty() || !c.producer_keys.empty() || !c.worker_keys.empty();
  check.require(
      !any_key || (!c.server_key.empty() && !c.producer_keys.empty() && !c.worker_keys.empty()),
      "cluster.server_key, cluster.producer_keys and cluster.worker_keys go together: "
      "set all three (CurveZMQ) or none");
  check.require(
      c.metrics_port >= 0 && c.metrics_port <= 65535,
      "cluster.metrics_port must be between 0 and 65535, got " + std::to_string(c.metrics_port));
  return check.status();
}

}  // namespace conveyor
