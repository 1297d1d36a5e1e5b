#include "kernels/cuda/op_profiler.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "kernels/cuda/cuda_check.h"

namespace conveyor::cuda {

OpProfiler::OpProfiler(cudaStream_t stream)
    : stream_(stream), enabled_(std::getenv("CONVEYOR_CUDA_PROFILE") != nullptr) {}

OpProfiler::~OpProfiler() {
  if (!enabled_) return;
  cudaStreamSynchronize(stream_);
  try {
    collect();
  } catch (const Error&) {
    // A device fault ends the backend anyway; print what was collected.
  }
  double device_ms = 0;
  for (const auto& [name, total] : totals_)
    device_ms += total.ms;
  const double wall_ms =
      started_ ? std::chrono::duration<double, std::milli>(last_collect_ - first_op_).count() : 0;
  std::vector<std::pair<std::string, Total>> rows(totals_.begin(), totals_.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
  std::fprintf(stderr, "[cuda profile] device time %.1f ms of %.1f ms wall (%.0f%% busy)\n",
               device_ms, wall_ms, wall_ms > 0 ? 100.0 * device_ms / wall_ms : 0.0);
  std::fprintf(stderr, "[cuda profile] %-36s %9s %11s %10s %7s\n", "op", "calls", "total ms",
               "mean us", "share");
  for (const auto& [name, total] : rows) {
    std::fprintf(stderr, "[cuda profile] %-36s %9lld %11.1f %10.1f %6.1f%%\n", name.c_str(),
                 total.calls, total.ms, 1000.0 * total.ms / static_cast<double>(total.calls),
                 device_ms > 0 ? 100.0 * total.ms / device_ms : 0.0);
  }
  for (cudaEvent_t e : free_events_)
    cudaEventDestroy(e);
  for (const Pending& p : pending_) {
    cudaEventDestroy(p.start);
    cudaEventDestroy(p.stop);
  }
}

cudaEvent_t OpProfiler::take_event() {
  if (!free_events_.empty()) {
    cudaEvent_t e = free_events_.back();
    free_events_.pop_back();
    return e;
  }
  cudaEvent_t e = nullptr;
  CONVEYOR_CUDA(cudaEventCreate(&e));
  return e;
}

OpProfiler::Scope::Scope(OpProfiler& profiler, std::string name)
    : profiler_(profiler.enabled_ ? &profiler : nullptr), name_(std::move(name)) {
  if (profiler_ == nullptr) return;
  if (!profiler_->started_) {
    profiler_->started_ = true;
    profiler_->first_op_ = std::chrono::steady_clock::now();
  }
  start_ = profiler_->take_event();
  CONVEYOR_CUDA(cudaEventRecord(start_, profiler_->stream_));
}

OpProfiler::Scope::~Scope() {
  if (profiler_ == nullptr) return;
  cudaEvent_t stop = nullptr;
  try {
    stop = profiler_->take_event();
    CONVEYOR_CUDA(cudaEventRecord(stop, profiler_->stream_));
  } catch (const Error&) {
    return;  // the op's own error is what matters
  }
  profiler_->pending_.push_back({std::move(name_), start_, stop});
}

void OpProfiler::collect() {
  if (!enabled_) return;
  // The pairs taken leave pending_ however the loop ends, an error included: each is
  // in free_events_ then, and must not stay pending too.
  std::size_t done = 0;
  struct Taken {
    std::vector<Pending>& pending;
    std::size_t& done;
    ~Taken() {
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(done));
    }
  } taken{pending_, done};
  for (const Pending& p : pending_) {
    // Ops finish in stream order: the first unfinished one ends what can be taken now.
    if (!event_done(p.stop)) break;
    float ms = 0;
    const cudaError_t timed = cudaEventElapsedTime(&ms, p.start, p.stop);
    free_events_.push_back(p.start);
    free_events_.push_back(p.stop);
    ++done;
    CONVEYOR_CUDA(timed);
    Total& total = totals_[p.name];
    ++total.calls;
    total.ms += ms;
  }
  last_collect_ = std::chrono::steady_clock::now();
}

}  // namespace conveyor::cuda
