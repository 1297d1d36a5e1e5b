// Progress of a batch job on stderr: a redrawn bar on a terminal, JSON lines for machines
// (log collectors, wrappers) otherwise. The formatting is pure functions so that tests and
// other writers (a job status endpoint) produce the same text; ProgressReporter only decides
// when to write.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>

#include "common/config/run_config.h"

namespace conveyor {

struct ProgressSnapshot {
  std::int64_t done = 0;    // requests finished with a result
  std::int64_t failed = 0;  // requests finished with an error line
  std::int64_t total = -1;  // -1: not yet known (input still being read)
  std::int64_t generated_tokens = 0;
  double elapsed_seconds = 0;
};

// Generated tokens over elapsed time; 0 before any time has passed.
double tokens_per_second(const ProgressSnapshot& snapshot);

// Seconds until every request has finished, at the rate requests have finished so far
// ((done + failed) / elapsed); nullopt while the total or the rate is unknown.
std::optional<double> estimate_remaining_seconds(const ProgressSnapshot& snapshot);

// "0:42", "12:05", "1:02:03": whole seconds, hours only when there are any.
std::string format_duration(double seconds);

// "[#####.....] 12/50 done, 1 failed | 153.2 tok/s | ETA 0:42": `width` cells of bar filled
// by (done + failed) / total ("12/? done" and an empty bar while the total is unknown, "ETA ?"
// while it cannot be estimated); width <= 0 leaves the bar out. No newline.
std::string format_progress_bar(const ProgressSnapshot& snapshot, int width);

// One JSON object, no newline, keys in this order:
// {"event":"progress","done":12,"failed":1,"total":50,"generated_tokens":1530,
//  "tokens_per_second":153.2,"elapsed_seconds":10.0,"eta_seconds":42.1}
// "total" and "eta_seconds" are null while unknown; times are rounded to milliseconds.
// The last line of a job adds "final":true.
std::string format_progress_json(const ProgressSnapshot& snapshot, bool is_final = false);

// Writes progress to a stream at a bounded rate. Thread-safe: the sink and the intake may
// both report.
class ProgressReporter {
 public:
  // kAuto becomes kBar when `out` is a terminal and kJsonl otherwise. JSON lines are written
  // at most every `interval_seconds`; the bar redraws at most ten times a second (or every
  // interval, if shorter), since a bar that moves only every few seconds looks stuck.
  // An interval of 0 writes on every update.
  ProgressReporter(ProgressMode mode, double interval_seconds, std::FILE* out = stderr);
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  // Writes when the interval has passed since the last write (the first update always
  // writes). Ignored after finish().
  void update(const ProgressSnapshot& snapshot);

  // Writes the final line whatever the interval (the bar then ends with "\n"); later calls
  // to update() and finish() do nothing. Writes nothing in kOff.
  void finish(const ProgressSnapshot& snapshot);

  // The mode in effect: kBar, kJsonl or kOff, never kAuto.
  ProgressMode mode() const { return mode_; }

 private:
  using Clock = std::chrono::steady_clock;

  void write(const ProgressSnapshot& snapshot, bool is_final);

  std::mutex mutex_;
  std::FILE* out_;
  ProgressMode mode_;
  Clock::duration min_gap_;
  std::optional<Clock::time_point> last_write_;
  std::size_t last_bar_length_ = 0;  // to blank what a shorter redraw leaves behind
  bool finished_ = false;
};

}  // namespace conveyor
