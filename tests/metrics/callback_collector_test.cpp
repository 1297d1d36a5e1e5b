// CallbackCollector: callbacks read at collection time, Prometheus naming rules
// enforced at registration, a throwing callback left out instead of failing a scrape.
#include "common/metrics/callback_collector.h"

#include <doctest/doctest.h>

#include <atomic>
#include <sstream>
#include <stdexcept>

#include <prometheus/text_serializer.h>

namespace conveyor {
namespace {

std::string text_of(const CallbackCollector& collector) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, collector.Collect());
  return out.str();
}

TEST_CASE("gauges and counters are read from their callbacks at every collection") {
  CallbackCollector collector;
  std::atomic<int> workers{2};
  std::atomic<int> steps{7};
  REQUIRE(collector
              .add_gauge("conveyor_test_workers", "Workers registered",
                         [&] { return static_cast<double>(workers.load()); })
              .ok());
  REQUIRE(collector
              .add_counter("conveyor_test_steps_total", "Steps run",
                           [&] { return static_cast<double>(steps.load()); })
              .ok());
  CHECK(collector.size() == 2);

  std::vector<prometheus::MetricFamily> families = collector.Collect();
  REQUIRE(families.size() == 2);
  CHECK(families[0].name == "conveyor_test_workers");
  CHECK(families[0].help == "Workers registered");
  CHECK(families[0].type == prometheus::MetricType::Gauge);
  REQUIRE(families[0].metric.size() == 1);
  CHECK(families[0].metric[0].gauge.value == 2.0);
  CHECK(families[1].type == prometheus::MetricType::Counter);
  CHECK(families[1].metric[0].counter.value == 7.0);

  workers = 5;
  steps = 9;
  families = collector.Collect();
  CHECK(families[0].metric[0].gauge.value == 5.0);
  CHECK(families[1].metric[0].counter.value == 9.0);

  const std::string text = text_of(collector);
  CHECK(text.find("# HELP conveyor_test_workers Workers registered\n") != std::string::npos);
  CHECK(text.find("# TYPE conveyor_test_workers gauge\n") != std::string::npos);
  CHECK(text.find("\nconveyor_test_workers 5\n") != std::string::npos);
  CHECK(text.find("# TYPE conveyor_test_steps_total counter\n") != std::string::npos);
  CHECK(text.find("\nconveyor_test_steps_total 9\n") != std::string::npos);
}

TEST_CASE("names that break the conventions are refused with the reason") {
  CallbackCollector collector;
  const auto one = [] { return 1.0; };
  struct Case {
    bool counter;
    std::string name, help, reason;
  };
  const Case cases[] = {
      {true, "conveyor_steps", "h", "_total"},           // counter without _total
      {false, "conveyor_steps_total", "h", "counters"},  // gauge with _total
      {false, "workers", "h", "conveyor_"},              // no prefix
      {false, "conveyor_", "h", "conveyor_"},            // nothing after the prefix
      {false, "conveyor_bad-name", "h", "not a valid"},  // invalid character
      {false, "conveyor_a:b", "h", "recording rules"},   // colon
      {false, "9conveyor_x", "h", "not a valid"},        // leading digit
      {false, "conveyor_no_help", "", "help"},           // empty help
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const Status s = c.counter ? collector.add_counter(c.name, c.help, one)
                               : collector.add_gauge(c.name, c.help, one);
    CHECK(s.code() == ErrorCode::kInvalidArgument);
    CHECK(s.message().find(c.reason) != std::string::npos);
  }
  CHECK(collector.add_gauge("conveyor_no_fn", "h", nullptr).code() == ErrorCode::kInvalidArgument);
  CHECK(collector.size() == 0);

  REQUIRE(collector.add_gauge("conveyor_once", "h", one).ok());
  const Status again = collector.add_gauge("conveyor_once", "h", one);
  CHECK(again.code() == ErrorCode::kInvalidArgument);
  CHECK(again.message().find("already registered") != std::string::npos);
  CHECK(collector.add_counter("conveyor_once_total", "h", one).ok());
  CHECK(collector.size() == 2);
}

TEST_CASE("a callback that throws is left out of the collection, the others stay") {
  CallbackCollector collector;
  REQUIRE(
      collector
          .add_gauge("conveyor_broken", "h", []() -> double { throw std::runtime_error("gone"); })
          .ok());
  REQUIRE(collector.add_gauge("conveyor_fine", "h", [] { return 3.0; }).ok());
  const std::vector<prometheus::MetricFamily> families = collector.Collect();
  REQUIRE(families.size() == 1);
  CHECK(families[0].name == "conveyor_fine");
}

}  // namespace
}  // namespace conveyor
