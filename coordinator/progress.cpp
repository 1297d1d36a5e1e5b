#include "coordinator/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace conveyor {
namespace {

// Bar cells on a terminal: the whole line stays under 80 columns for jobs below a million
// requests, so a redraw with "\r" never wraps.
constexpr int kBarWidth = 24;
constexpr double kBarMinGapSeconds = 0.1;
// An ETA of more than ~30 years is "unknown" in practice, and the cap keeps the conversion
// to integer seconds defined.
constexpr double kMaxDurationSeconds = 1e9;

double round_to_milliseconds(double seconds) {
  return std::round(seconds * 1000.0) / 1000.0;
}

std::int64_t finished(const ProgressSnapshot& snapshot) {
  return snapshot.done + snapshot.failed;
}

}  // namespace

double tokens_per_second(const ProgressSnapshot& snapshot) {
  if (!(snapshot.elapsed_seconds > 0)) return 0;
  return static_cast<double>(snapshot.generated_tokens) / snapshot.elapsed_seconds;
}

std::optional<double> estimate_remaining_seconds(const ProgressSnapshot& snapshot) {
  if (snapshot.total < 0) return std::nullopt;
  const std::int64_t remaining = std::max<std::int64_t>(snapshot.total - finished(snapshot), 0);
  if (remaining == 0) return 0.0;
  if (finished(snapshot) <= 0 || !(snapshot.elapsed_seconds > 0)) return std::nullopt;
  const double per_second = static_cast<double>(finished(snapshot)) / snapshot.elapsed_seconds;
  const double seconds = static_cast<double>(remaining) / per_second;
  if (!std::isfinite(seconds) || seconds > kMaxDurationSeconds) return std::nullopt;
  return seconds;
}

std::string format_duration(double seconds) {
  if (!(seconds > 0)) seconds = 0;  // also NaN
  const auto whole = static_cast<long long>(std::llround(std::min(seconds, kMaxDurationSeconds)));
  const long long hours = whole / 3600;
  const long long minutes = whole / 60 % 60;
  const long long secs = whole % 60;
  char text[48];
  if (hours > 0) {
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", hours, minutes, secs);
  } else {
    std::snprintf(text, sizeof text, "%lld:%02lld", minutes, secs);
  }
  return text;
}

std::string format_progress_bar(const ProgressSnapshot& snapshot, int width) {
  std::string line;
  if (width > 0) {
    int filled = 0;
    if (snapshot.total == 0) {
      filled = width;  // nothing to do is all done
    } else if (snapshot.total > 0) {
      const double fraction = std::clamp(
          static_cast<double>(finished(snapshot)) / static_cast<double>(snapshot.total), 0.0, 1.0);
      filled = static_cast<int>(fraction * width);
    }
    line.append("[")
        .append(static_cast<std::size_t>(filled), '#')
        .append(static_cast<std::size_t>(width - filled), '.')
        .append("] ");
  }
  const std::string total = snapshot.total >= 0 ? std::to_string(snapshot.total) : "?";
  char rate[48];
  std::snprintf(rate, sizeof rate, "%.1f", tokens_per_second(snapshot));
  const std::optional<double> eta = estimate_remaining_seconds(snapshot);
  line.append(std::to_string(snapshot.done))
      .append("/")
      .append(total)
      .append(" done, ")
      .append(std::to_string(snapshot.failed))
      .append(" failed | ")
      .append(rate)
      .append(" tok/s | ETA ")
      .append(eta ? format_duration(*eta) : "?");
  return line;
}

std::string format_progress_json(const ProgressSnapshot& snapshot, bool is_final) {
  // ordered_json keeps the documented key order, which people reading the log rely on.
  nlohmann::ordered_json line;
  line["event"] = "progress";
  line["done"] = snapshot.done;
  line["failed"] = snapshot.failed;
  line["total"] = snapshot.total >= 0 ? nlohmann::ordered_json(snapshot.total) : nullptr;
  line["generated_tokens"] = snapshot.generated_tokens;
  line["tokens_per_second"] = round_to_milliseconds(tokens_per_second(snapshot));
  line["elapsed_seconds"] = round_to_milliseconds(std::max(snapshot.elapsed_seconds, 0.0));
  const std::optional<double> eta = estimate_remaining_seconds(snapshot);
  line["eta_seconds"] = eta ? nlohmann::ordered_json(round_to_milliseconds(*eta)) : nullptr;
  if (is_final) line["final"] = true;
  return line.dump();
}

namespace {

ProgressMode resolve_mode(ProgressMode mode, std::FILE* out) {
  if (out == nullptr) return ProgressMode::kOff;
  if (mode != ProgressMode::kAuto) return mode;
  return ::isatty(::fileno(out)) == 1 ? ProgressMode::kBar : ProgressMode::kJsonl;
}

}  // namespace

ProgressReporter::ProgressReporter(ProgressMode mode, double interval_seconds, std::FILE* out)
    : out_(out), mode_(resolve_mode(mode, out)) {
  double gap = std::isfinite(interval_seconds) ? std::max(interval_seconds, 0.0) : 0.0;
  if (mode_ == ProgressMode::kBar) gap = std::min(gap, kBarMinGapSeconds);
  min_gap_ = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap));
}

void ProgressReporter::update(const ProgressSnapshot& snapshot) {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (mode_ == ProgressMode::kOff || finished_) return;
  const Clock::time_point now = Clock::now();
  if (last_write_ && now - *last_write_ < min_gap_) return;
  last_write_ = now;
  write(snapshot, false);
}

void ProgressReporter::finish(const ProgressSnapshot& snapshot) {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (mode_ == ProgressMode::kOff || finished_) return;
  finished_ = true;
  write(snapshot, true);
}

void ProgressReporter::write(const ProgressSnapshot& snapshot, bool is_final) {
  if (mode_ == ProgressMode::kJsonl) {
    const std::string line = format_progress_json(snapshot, is_final) + "\n";
    std::fputs(line.c_str(), out_);
  } else {
    const std::string bar = format_progress_bar(snapshot, kBarWidth);
    std::string line = "\r";
    line.append(bar);
    if (bar.size() < last_bar_length_) line.append(last_bar_length_ - bar.size(), ' ');
    last_bar_length_ = bar.size();
    if (is_final) line.append("\n");
    std::fputs(line.c_str(), out_);
  }
  std::fflush(out_);
}

}  // namespace conveyor
