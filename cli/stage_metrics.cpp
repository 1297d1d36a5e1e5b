#include "cli/stage_metrics.h"

#include <prometheus/metric_family.h>

namespace conveyor::cli {
namespace {

class StageCollector final : public prometheus::Collectable {
 public:
  explicit StageCollector(StageStatsFn stages) : stages_(std::move(stages)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    auto family = [](const char* name, const char* help, MetricType type) {
      prometheus::MetricFamily f;
      f.name = name;
      f.help = help;
      f.type = type;
      return f;
    };
    prometheus::MetricFamily steps =
        family("conveyor_stage_steps_total", "Steps a stage ran", MetricType::Counter);
    prometheus::MetricFamily compute =
        family("conveyor_stage_compute_seconds_total", "Time a stage spent running its layers",
               MetricType::Counter);
    prometheus::MetricFamily device_wait =
        family("conveyor_stage_device_wait_seconds_total",
               "Of a stage's compute time, the time it waited for its device to end a step",
               MetricType::Counter);
    prometheus::MetricFamily wait = family(
        "conveyor_stage_input_wait_seconds_total",
        "Time a stage spent waiting for the previous stage's activations", MetricType::Counter);
    prometheus::MetricFamily bubble = family(
        "conveyor_stage_bubble_ratio",
        "Recent share of a stage's step time spent waiting for input (0-1)", MetricType::Gauge);
    prometheus::MetricFamily bytes =
        family("conveyor_stage_activation_bytes_sent_total",
               "Activation bytes a stage sent to the next, by transport", MetricType::Counter);
    for (const auto& [labels, s] : stages_()) {
      auto sample = [&labels](double value, MetricType type,
                              const std::map<std::string, std::string>& extra = {}) {
        prometheus::ClientMetric m;
        for (const auto& [k, v] : labels)
          m.label.push_back({k, v});
        for (const auto& [k, v] : extra)
          m.label.push_back({k, v});
        if (type == MetricType::Counter) {
          m.counter.value = value;
        } else {
          m.gauge.value = value;
        }
        return m;
      };
      steps.metric.push_back(sample(static_cast<double>(s.steps), MetricType::Counter));
      compute.metric.push_back(sample(s.compute_seconds, MetricType::Counter));
      device_wait.metric.push_back(sample(s.device_wait_seconds, MetricType::Counter));
      wait.metric.push_back(sample(s.input_wait_seconds, MetricType::Counter));
      bubble.metric.push_back(sample(s.bubble_ratio, MetricType::Gauge));
      if (!s.transport.empty()) {
        bytes.metric.push_back(sample(static_cast<double>(s.activation_bytes_sent),
                                      MetricType::Counter, {{"transport", s.transport}}));
      }
    }
    return {steps, compute, device_wait, wait, bubble, bytes};
  }

 private:
  StageStatsFn stages_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> stage_metrics(StageStatsFn stages) {
  return std::make_shared<StageCollector>(std::move(stages));
}

}  // namespace conveyor::cli
