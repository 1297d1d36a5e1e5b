// Rate limiting for log lines on hot paths (a flood of refused messages must not
// become a flood of lines): at most `max_lines` lines per `interval` per key; the
// first line let through after a suppression says how many were left out.
//
//   static log::RateLimiter refused(5, std::chrono::seconds(10));
//   log::limited(refused, "refused", out, log::Level::kWarn, "refused a message: ...");
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "common/log/log.h"

namespace conveyor::log {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;

  struct Decision {
    bool allowed = false;
    // When allowed: the lines of this key suppressed since the last one let through.
    std::int64_t suppressed = 0;
  };

  // `now` is injectable so that tests drive the windows without sleeping.
  RateLimiter(std::int64_t max_lines, Clock::duration interval, Now now = Clock::now);

  // Counts one line of `key`.
  Decision admit(std::string_view key);

 private:
  struct Window {
    Clock::time_point start;
    std::int64_t lines = 0;       // let through in this window
    std::int64_t suppressed = 0;  // since the last line let through
  };

  const std::int64_t max_lines_;
  const Clock::duration interval_;
  const Now now_;
  std::mutex mutex_;
  std::map<std::string, Window, std::less<>> windows_;
};

// Writes the line when `limiter` lets it through, after one line saying how many lines
// of `key` it left out, if any.
void limited(RateLimiter& limiter, std::string_view key, spdlog::logger& logger, Level level,
             std::string_view message, const Fields& fields = {});

}  // namespace conveyor::log
