// The rate limiter counts lines per key and window on an injected clock.
#include "common/log/rate_limiter.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace conveyor::log {
namespace {

using std::chrono::seconds;

struct FakeClock {
  RateLimiter::Clock::time_point now{};
  RateLimiter::Now function() {
    return [this] { return now; };
  }
};

TEST_CASE("at most N lines per interval per key; the next window reports the suppressed") {
  FakeClock clock;
  RateLimiter limiter(2, seconds(10), clock.function());
  CHECK(limiter.admit("a").allowed);
  CHECK(limiter.admit("a").allowed);
  for (int i = 0; i < 5; ++i)
    CHECK_FALSE(limiter.admit("a").allowed);
  // Another key has its own budget.
  CHECK(limiter.admit("b").allowed);
  CHECK(limiter.admit("b").suppressed == 0);

  clock.now += seconds(9);  // still the same window
  CHECK_FALSE(limiter.admit("a").allowed);

  clock.now += seconds(1);  // a new window
  const RateLimiter::Decision first = limiter.admit("a");
  CHECK(first.allowed);
  CHECK(first.suppressed == 6);
  const RateLimiter::Decision second = limiter.admit("a");
  CHECK(second.allowed);
  CHECK(second.suppressed == 0);  // reported once
  CHECK_FALSE(limiter.admit("a").allowed);
}

TEST_CASE("a key with nothing suppressed reports nothing") {
  FakeClock clock;
  RateLimiter limiter(1, seconds(1), clock.function());
  for (int i = 0; i < 3; ++i) {
    const RateLimiter::Decision d = limiter.admit("k");
    CHECK(d.allowed);
    CHECK(d.suppressed == 0);
    clock.now += seconds(1);
  }
}

TEST_CASE("limited() writes one line saying how many it left out") {
  std::string text;
  configure({Format::kJson, Level::kInfo, {}});
  set_writer([&text](std::string_view line) { text.append(line); });
  FakeClock clock;
  RateLimiter limiter(1, seconds(5), clock.function());
  spdlog::logger& out = conveyor::logger("worker");
  for (int i = 0; i < 4; ++i)
    limited(limiter, "refused", out, Level::kWarn, "refused a message", {{"n", i}});
  clock.now += seconds(5);
  limited(limiter, "refused", out, Level::kWarn, "refused a message", {{"n", 4}});
  set_writer(nullptr);

  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(nlohmann::json::parse(line));
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].at("msg") == "refused a message");
  CHECK(lines[0].at("n") == "0");
  CHECK(lines[1].at("msg") == "suppressed 3 similar line(s)");
  CHECK(lines[1].at("suppressed") == "3");
  CHECK(lines[1].at("key") == "refused");
  CHECK(lines[1].at("level") == "warn");
  CHECK(lines[2].at("n") == "4");
}

}  // namespace
}  // namespace conveyor::log
