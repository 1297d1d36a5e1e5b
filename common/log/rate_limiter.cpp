#include "common/log/rate_limiter.h"

#include <string>
#include <utility>

namespace conveyor::log {

RateLimiter::RateLimiter(std::int64_t max_lines, Clock::duration interval, Now now)
    : max_lines_(max_lines), interval_(interval), now_(std::move(now)) {}

RateLimiter::Decision RateLimiter::admit(std::string_view key) {
  const Clock::time_point now = now_();
  std::lock_guard lock(mutex_);
  auto it = windows_.find(key);
  if (it == windows_.end()) it = windows_.emplace(std::string(key), Window{now, 0, 0}).first;
  Window& w = it->second;
  if (now - w.start >= interval_) {
    w.start = now;
    w.lines = 0;
  }
  if (w.lines >= max_lines_) {
    ++w.suppressed;
    return {false, 0};
  }
  ++w.lines;
  return {true, std::exchange(w.suppressed, 0)};
}

void limited(RateLimiter& limiter, std::string_view key, spdlog::logger& logger, Level level,
             std::string_view message, const Fields& fields) {
  const RateLimiter::Decision decision = limiter.admit(key);
  if (!decision.allowed) return;
  if (decision.suppressed > 0) {
    write(logger, level, "suppressed " + std::to_string(decision.suppressed) + " similar line(s)",
          {{"suppressed", decision.suppressed}, {"key", std::string(key)}});
  }
  write(logger, level, message, fields);
}

}  // namespace conveyor::log
