// How long work in flight may go without a step coming back before the process counts
// as wedged (its /readyz turns 503): ten mean steps, and never less than a floor, so
// that a step slowed by a long prompt or a busy machine is not taken for a hang. One
// rule for the engine (`run`, `bench`) and for a worker's stage.
#pragma once

#include <algorithm>
#include <cstdint>

namespace conveyor {

inline constexpr double kMinStallSeconds = 10.0;

inline double stall_limit_seconds(std::uint64_t steps, double step_seconds_total,
                                  double min_seconds = kMinStallSeconds) {
  const double mean = steps > 0 ? step_seconds_total / static_cast<double>(steps) : 0.0;
  return std::max(min_seconds, 10.0 * mean);
}

}  // namespace conveyor
