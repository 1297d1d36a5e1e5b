// EngineMetrics: what a scheduler actor exports to Prometheus, registered by the actor's
// owner on its metrics server's registry and updated by the actor as things happen
// (prometheus-cpp metrics are atomic: scrapes read them from other threads).
//
// Names follow Prometheus conventions: prefix conveyor_engine_, base units, _total on
// counters, ratios 0 to 1, no per-request labels. Latency buckets run from 10 ms to 4
// hours: a batch job's queue time is measured in minutes and hours, not milliseconds.
//
// It also answers readiness: "making progress or idle". While steps are in flight, a
// step must come back within max(10 s, 10 x the mean step time); otherwise the engine
// is wedged and ready() turns false.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/stall_limit.h"

namespace conveyor {

// What the scheduler looks like now: totals since it started, and gauges.
struct EngineState {
  std::int64_t running = 0;
  std::int64_t waiting = 0;
  struct Tier {
    std::int64_t used_blocks = 0;
    std::int64_t blocks = 0;  // 0: no such tier
  };
  Tier device, host, disk;
  std::int64_t recompute_preemptions = 0;
  std::int64_t swap_preemptions = 0;
  std::int64_t swapped_bytes = 0;  // out and back in
  std::int64_t prefix_queried = 0;
  std::int64_t prefix_hit = 0;
  bool in_flight = false;
};

class EngineMetrics {
 public:
  // `labels` tell engines in one process apart (a coordinator's replicas); empty for
  // one. With labels, the engine's series leave the registry with it, so that a
  // replica that is gone is not reported forever. `min_stall_seconds`: the least time
  // without a step back, while steps are in flight, that counts as wedged.
  explicit EngineMetrics(std::shared_ptr<prometheus::Registry> registry,
                         const std::map<std::string, std::string>& labels = {},
                         double min_stall_seconds = kMinStallSeconds);
  ~EngineMetrics();
  EngineMetrics(const EngineMetrics&) = delete;
  EngineMetrics& operator=(const EngineMetrics&) = delete;

  // Requests: taken from the queue, first scheduled (queue time), finished by reason
  // ("stop", "length") or failed; end-to-end latency from submission.
  void request_admitted(double queue_seconds);
  void request_finished(const std::string& finish_reason, double e2e_seconds);
  void request_failed(double e2e_seconds);
  // Tokens: prompt positions computed or reused, and each generated token with its
  // latency (the first token's from submission, later ones from the token before).
  void prompt_tokens(std::int64_t n);
  void first_token(double seconds);
  void next_token(double seconds);

  // One step returned: its tokens, sequences and time from submission to result.
  void step(std::int64_t tokens, std::int64_t sequences, double seconds);
  // The scheduler's state, refreshed each loop.
  void state(const EngineState& state);

  bool ready() const;

 private:
  // Registration helpers for the member initialisers: the series of the engine's
  // labels (plus `extra`) in the named family.
  prometheus::Counter& counter(const std::string& name, const std::string& help,
                               const std::map<std::string, std::string>& labels,
                               const std::map<std::string, std::string>& extra = {});
  prometheus::Gauge& gauge(const std::string& name, const std::string& help,
                           const std::map<std::string, std::string>& labels,
                           const std::map<std::string, std::string>& extra = {});
  prometheus::Histogram& histogram(const std::string& name, const std::string& help,
                                   const std::map<std::string, std::string>& labels,
                                   const prometheus::Histogram::BucketBoundaries& buckets);

  std::shared_ptr<prometheus::Registry> registry_;  // outlives the references below
  std::vector<std::function<void()>> removers_;     // with labels: take the series out
  prometheus::Gauge& running_;
  prometheus::Gauge& waiting_;
  prometheus::Counter& finished_stop_;
  prometheus::Counter& finished_length_;
  prometheus::Counter& failed_;
  prometheus::Counter& prompt_tokens_;
  prometheus::Counter& generation_tokens_;
  prometheus::Histogram& queue_seconds_;
  prometheus::Histogram& ttft_seconds_;
  prometheus::Histogram& itl_seconds_;
  prometheus::Histogram& e2e_seconds_;
  prometheus::Counter& steps_;
  prometheus::Histogram& step_tokens_;
  prometheus::Histogram& step_sequences_;
  prometheus::Histogram& step_seconds_;
  // Per tier of K/V memory: blocks in use, blocks there, and their ratio.
  struct TierGauges {
    prometheus::Gauge& used;
    prometheus::Gauge& total;
    prometheus::Gauge& usage;
    void set(const EngineState::Tier& tier);
  };
  TierGauges tier_gauges(const std::map<std::string, std::string>& labels, const char* tier);
  TierGauges device_;
  TierGauges host_;
  TierGauges disk_;
  prometheus::Counter& preemptions_recompute_;
  prometheus::Counter& preemptions_swap_;
  prometheus::Counter& swapped_bytes_;
  prometheus::Counter& prefix_queried_;
  prometheus::Counter& prefix_hit_;

  // The scheduler reports totals; counters take the increase since the last report.
  std::int64_t seen_recomputes_ = 0;
  std::int64_t seen_swaps_ = 0;
  std::int64_t seen_swapped_bytes_ = 0;
  std::int64_t seen_prefix_queried_ = 0;
  std::int64_t seen_prefix_hit_ = 0;

  double min_stall_seconds_;
  std::atomic<bool> in_flight_{false};
  std::atomic<std::int64_t> last_progress_ns_;
  std::atomic<std::int64_t> step_count_{0};
  std::atomic<double> step_seconds_total_{0};
};

}  // namespace conveyor
