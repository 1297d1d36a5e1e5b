#include "coordinator/engine_metrics.h"

#include "common/stall_limit.h"

namespace conveyor {
namespace {

using prometheus::Histogram;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// 10 ms to 4 h: request latencies of batch jobs.
const Histogram::BucketBoundaries& request_buckets() {
  static const Histogram::BucketBoundaries buckets = {0.01, 0.025, 0.05, 0.1,  0.25, 0.5, 1,
                                                      2.5,  5,     10,   30,   60,   120, 300,
                                                      600,  1800,  3600, 7200, 14400};
  return buckets;
}

// 1 ms to 1 min: between two tokens, and a step.
const Histogram::BucketBoundaries& token_buckets() {
  static const Histogram::BucketBoundaries buckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return buckets;
}

// Powers of two up to 16384: tokens or sequences in one step.
const Histogram::BucketBoundaries& size_buckets() {
  static const Histogram::BucketBoundaries buckets = {1,   2,   4,    8,    16,   32,   64,   128,
                                                      256, 512, 1024, 2048, 4096, 8192, 16384};
  return buckets;
}

// Adds the series of `labels` (plus `extra`) to a family, and notes how to take it
// out again.
template <typename Metric, typename... Args>
Metric& add(prometheus::Family<Metric>& family, const std::map<std::string, std::string>& labels,
            const std::map<std::string, std::string>& extra,
            std::vector<std::function<void()>>& removers, Args&&... args) {
  std::map<std::string, std::string> all = labels;
  all.insert(extra.begin(), extra.end());
  Metric& metric = family.Add(all, std::forward<Args>(args)...);
  if (!labels.empty()) removers.push_back([&family, &metric] { family.Remove(&metric); });
  return metric;
}

}  // namespace

EngineMetrics::EngineMetrics(std::shared_ptr<prometheus::Registry> registry,
                             const std::map<std::string, std::string>& l, double min_stall_seconds)
    : registry_(std::move(registry)),
      running_(gauge("conveyor_engine_sequences_running", "Sequences in the running batch", l)),
      waiting_(gauge("conveyor_engine_sequences_waiting",
                     "Sequences taken from the queue and not yet running", l)),
      finished_stop_(counter("conveyor_engine_requests_finished_total",
                             "Requests finished, by the first choice's finish reason", l,
                             {{"finish_reason", "stop"}})),
      finished_length_(counter("conveyor_engine_requests_finished_total",
                               "Requests finished, by the first choice's finish reason", l,
                               {{"finish_reason", "length"}})),
      failed_(
          counter("conveyor_engine_requests_failed_total", "Requests that ended with an error", l)),
      prompt_tokens_(counter("conveyor_engine_prompt_tokens_total",
                             "Prompt tokens of the requests admitted", l)),
      generation_tokens_(counter("conveyor_engine_generation_tokens_total", "Tokens generated", l)),
      queue_seconds_(histogram("conveyor_engine_queue_time_seconds",
                               "From submission to the request's first step", l,
                               request_buckets())),
      ttft_seconds_(histogram("conveyor_engine_time_to_first_token_seconds",
                              "From submission to the first generated token", l,
                              request_buckets())),
      itl_seconds_(histogram("conveyor_engine_inter_token_latency_seconds",
                             "Between two generated tokens of a sequence", l, token_buckets())),
      e2e_seconds_(histogram("conveyor_engine_e2e_request_latency_seconds",
                             "From submission to the request's result", l, request_buckets())),
      steps_(counter("conveyor_engine_steps_total", "Batch steps completed", l)),
      step_tokens_(histogram("conveyor_engine_step_tokens", "Tokens computed in one step", l,
                             size_buckets())),
      step_sequences_(histogram("conveyor_engine_step_sequences",
                                "Sequences in one step (the batch size)", l, size_buckets())),
      step_seconds_(histogram("conveyor_engine_step_seconds",
                              "From a step's submission to its result", l, token_buckets())),
      device_(tier_gauges(l, "device")),
      host_(tier_gauges(l, "host")),
      disk_(tier_gauges(l, "disk")),
      preemptions_recompute_(counter("conveyor_engine_preemptions_total",
                                     "Sequences preempted for K/V space, by how they resume", l,
                                     {{"kind", "recompute"}})),
      preemptions_swap_(counter("conveyor_engine_preemptions_total",
                                "Sequences preempted for K/V space, by how they resume", l,
                                {{"kind", "swap"}})),
      swapped_bytes_(counter("conveyor_engine_kv_swapped_bytes_total",
                             "K/V bytes moved between memory tiers by preemption swaps, out "
                             "and back in",
                             l)),
      prefix_queried_(counter("conveyor_engine_prefix_cache_queried_tokens_total",
                              "Prompt positions looked up in the prefix cache", l)),
      prefix_hit_(counter("conveyor_engine_prefix_cache_hit_tokens_total",
                          "Prompt positions found in the prefix cache (not computed)", l)),
      min_stall_seconds_(min_stall_seconds),
      last_progress_ns_(now_ns()) {}

EngineMetrics::~EngineMetrics() {
  for (const auto& remove : removers_)
    remove();
}

prometheus::Counter& EngineMetrics::counter(const std::string& name, const std::string& help,
                                            const std::map<std::string, std::string>& labels,
                                            const std::map<std::string, std::string>& extra) {
  return add(prometheus::BuildCounter().Name(name).Help(help).Register(*registry_), labels, extra,
             removers_);
}

prometheus::Gauge& EngineMetrics::gauge(const std::string& name, const std::string& help,
                                        const std::map<std::string, std::string>& labels,
                                        const std::map<std::string, std::string>& extra) {
  return add(prometheus::BuildGauge().Name(name).Help(help).Register(*registry_), labels, extra,
             removers_);
}

prometheus::Histogram& EngineMetrics::histogram(const std::string& name, const std::string& help,
                                                const std::map<std::string, std::string>& labels,
                                                const prometheus::Histogram::BucketBoundaries& b) {
  return add(prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_), labels, {},
             removers_, b);
}

void EngineMetrics::request_admitted(double queue_seconds) {
  queue_seconds_.Observe(queue_seconds);
}

void EngineMetrics::request_finished(const std::string& finish_reason, double e2e_seconds) {
  (finish_reason == "length" ? finished_length_ : finished_stop_).Increment();
  e2e_seconds_.Observe(e2e_seconds);
}

void EngineMetrics::request_failed(double e2e_seconds) {
  failed_.Increment();
  e2e_seconds_.Observe(e2e_seconds);
}

void EngineMetrics::prompt_tokens(std::int64_t n) {
  prompt_tokens_.Increment(static_cast<double>(n));
}

void EngineMetrics::first_token(double seconds) {
  generation_tokens_.Increment();
  ttft_seconds_.Observe(seconds);
}

void EngineMetrics::next_token(double seconds) {
  generation_tokens_.Increment();
  itl_seconds_.Observe(seconds);
}

void EngineMetrics::step(std::int64_t tokens, std::int64_t sequences, double seconds) {
  steps_.Increment();
  step_tokens_.Observe(static_cast<double>(tokens));
  step_sequences_.Observe(static_cast<double>(sequences));
  step_seconds_.Observe(seconds);
  step_count_.fetch_add(1);
  step_seconds_total_.fetch_add(seconds);
  last_progress_ns_.store(now_ns());
}

EngineMetrics::TierGauges EngineMetrics::tier_gauges(
    const std::map<std::string, std::string>& labels, const char* tier) {
  return {gauge("conveyor_engine_kv_blocks_used", "K/V blocks holding sequences", labels,
                {{"tier", tier}}),
          gauge("conveyor_engine_kv_blocks", "K/V blocks in the tier (device: the cache)", labels,
                {{"tier", tier}}),
          gauge("conveyor_engine_kv_usage_ratio", "Share of the K/V blocks in use (0-1)", labels,
                {{"tier", tier}})};
}

void EngineMetrics::TierGauges::set(const EngineState::Tier& tier) {
  used.Set(static_cast<double>(tier.used_blocks));
  total.Set(static_cast<double>(tier.blocks));
  usage.Set(tier.blocks > 0
                ? static_cast<double>(tier.used_blocks) / static_cast<double>(tier.blocks)
                : 0.0);
}

void EngineMetrics::state(const EngineState& state) {
  running_.Set(static_cast<double>(state.running));
  waiting_.Set(static_cast<double>(state.waiting));
  device_.set(state.device);
  host_.set(state.host);
  disk_.set(state.disk);
  // A new scheduler (after a failed run) counts from zero again.
  const auto grow = [](prometheus::Counter& c, std::int64_t total, std::int64_t& seen) {
    if (total < seen) seen = 0;
    c.Increment(static_cast<double>(total - seen));
    seen = total;
  };
  grow(preemptions_recompute_, state.recompute_preemptions, seen_recomputes_);
  grow(preemptions_swap_, state.swap_preemptions, seen_swaps_);
  grow(swapped_bytes_, state.swapped_bytes, seen_swapped_bytes_);
  grow(prefix_queried_, state.prefix_queried, seen_prefix_queried_);
  grow(prefix_hit_, state.prefix_hit, seen_prefix_hit_);
  // Progress is measured from when work came in flight, not from the last step of a
  // job that ended long ago.
  if (state.in_flight && !in_flight_.load()) last_progress_ns_.store(now_ns());
  in_flight_.store(state.in_flight);
}

bool EngineMetrics::ready() const {
  if (!in_flight_.load()) return true;  // idle
  const double limit = stall_limit_seconds(static_cast<std::uint64_t>(step_count_.load()),
                                           step_seconds_total_.load(), min_stall_seconds_);
  const double since = static_cast<double>(now_ns() - last_progress_ns_.load()) * 1e-9;
  return since <= limit;
}

}  // namespace conveyor
