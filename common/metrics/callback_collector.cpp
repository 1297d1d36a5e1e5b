#include "common/metrics/callback_collector.h"

#include <prometheus/check_names.h>

namespace conveyor {
namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Status CallbackCollector::add_gauge(const std::string& name, const std::string& help, ValueFn fn) {
  if (ends_with(name, "_total")) {
    return Status(ErrorCode::kInvalidArgument,
                  "metric " + name + ": `_total` is the suffix of counters, not gauges");
  }
  return add({name, help, prometheus::MetricType::Gauge, std::move(fn)});
}

Status CallbackCollector::add_counter(const std::string& name, const std::string& help,
                                      ValueFn fn) {
  if (!ends_with(name, "_total")) {
    return Status(ErrorCode::kInvalidArgument, "counter " + name + " must end in `_total`");
  }
  return add({name, help, prometheus::MetricType::Counter, std::move(fn)});
}

Status CallbackCollector::add(Entry entry) {
  if (!prometheus::CheckMetricName(entry.name)) {
    return Status(ErrorCode::kInvalidArgument,
                  "metric name \"" + entry.name + "\" is not a valid Prometheus name");
  }
  // Colons are valid but reserved for recording rules.
  if (entry.name.find(':') != std::string::npos) {
    return Status(ErrorCode::kInvalidArgument,
                  "metric " + entry.name + ": colons are reserved for recording rules");
  }
  const std::string prefix = kMetricPrefix;
  if (entry.name.rfind(prefix, 0) != 0 || entry.name.size() == prefix.size()) {
    return Status(ErrorCode::kInvalidArgument,
                  "metric " + entry.name + " must start with `" + kMetricPrefix + "`");
  }
  if (entry.help.empty()) {
    return Status(ErrorCode::kInvalidArgument, "metric " + entry.name + " has no help text");
  }
  if (!entry.fn) {
    return Status(ErrorCode::kInvalidArgument, "metric " + entry.name + " has no callback");
  }
  std::lock_guard lock(mutex_);
  for (const Entry& e : entries_) {
    if (e.name == entry.name) {
      return Status(ErrorCode::kInvalidArgument, "metric " + entry.name + " is already registered");
    }
  }
  entries_.push_back(std::move(entry));
  return Status::ok_status();
}

std::size_t CallbackCollector::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::vector<prometheus::MetricFamily> CallbackCollector::Collect() const {
  std::lock_guard lock(mutex_);
  std::vector<prometheus::MetricFamily> families;
  families.reserve(entries_.size());
  for (const Entry& e : entries_) {
    double value = 0;
    try {
      value = e.fn();
    } catch (...) {
      continue;  // an exception must not reach the HTTP server's thread
    }
    prometheus::MetricFamily family;
    family.name = e.name;
    family.help = e.help;
    family.type = e.type;
    prometheus::ClientMetric sample;
    if (e.type == prometheus::MetricType::Counter) {
      sample.counter.value = value;
    } else {
      sample.gauge.value = value;
    }
    family.metric.push_back(std::move(sample));
    families.push_back(std::move(family));
  }
  return families;
}

}  // namespace conveyor
