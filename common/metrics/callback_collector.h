// CallbackCollector: Prometheus gauges and counters whose values are read from
// callbacks at scrape time. The processes already keep their counters (the cluster
// manager's stats, the journal's fsync times, ...); reading them when Prometheus
// scrapes avoids threading metric objects through every module and keeps one source
// of truth. prometheus-cpp 1.0 has no callback metrics, so this is a Collectable of
// its own, registered with a MetricsServer (or any prometheus-cpp Exposer).
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "common/status.h"

namespace conveyor {

// Every exported name carries this prefix (Prometheus naming conventions: one prefix
// per application, base units, `_total` on counters).
inline constexpr const char* kMetricPrefix = "conveyor_";

class CallbackCollector final : public prometheus::Collectable {
 public:
  using ValueFn = std::function<double()>;

  // Registers a gauge read from `fn` at every scrape. kInvalidArgument when `name` is
  // not a valid Prometheus name, lacks the `conveyor_` prefix, ends in `_total` (a
  // counter's suffix), is already registered, `help` is empty or `fn` is empty.
  Status add_gauge(const std::string& name, const std::string& help, ValueFn fn);
  // Registers a counter (a value that only grows while the process lives): as
  // add_gauge, except that `name` must end in `_total`.
  Status add_counter(const std::string& name, const std::string& help, ValueFn fn);

  std::size_t size() const;

  // One family per entry, in registration order, each with one sample. A callback that
  // throws leaves its family out of this scrape instead of failing the whole scrape.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct Entry {
    std::string name;
    std::string help;
    prometheus::MetricType type;
    ValueFn fn;
  };
  Status add(Entry entry);

  mutable std::mutex mutex_;  // entries may be added while a scrape runs
  std::vector<Entry> entries_;
};

}  // namespace conveyor
