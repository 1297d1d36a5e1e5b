// OpProfiler: where a CUDA backend's device time goes, op by op, for tuning. Off
// unless CONVEYOR_CUDA_PROFILE is set in the environment; then every op is bracketed
// by two CUDA events on the backend's stream, the elapsed times are collected after
// each stream synchronisation, and a table (op, calls, total ms, mean us, share of the
// device time and of the wall time since the first op) goes to stderr when the
// backend is destroyed. The events cost a few microseconds per op.
#pragma once

#include <cuda_runtime.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace conveyor::cuda {

class OpProfiler {
 public:
  explicit OpProfiler(cudaStream_t stream);
  ~OpProfiler();
  OpProfiler(const OpProfiler&) = delete;
  OpProfiler& operator=(const OpProfiler&) = delete;

  bool enabled() const { return enabled_; }

  // Times the ops queued while it lives under `name`.
  class Scope {
   public:
    Scope(OpProfiler& profiler, std::string name);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    OpProfiler* profiler_;  // null when disabled
    std::string name_;
    cudaEvent_t start_ = nullptr;
  };

  // Adds the pairs whose ops have finished to the totals (all of them after the stream
  // has been synchronised).
  void collect();

 private:
  struct Pending {
    std::string name;
    cudaEvent_t start;
    cudaEvent_t stop;
  };
  struct Total {
    long long calls = 0;
    double ms = 0;
  };

  cudaEvent_t take_event();

  cudaStream_t stream_;
  bool enabled_;
  std::vector<cudaEvent_t> free_events_;
  std::vector<Pending> pending_;
  std::map<std::string, Total> totals_;
  std::chrono::steady_clock::time_point first_op_{};
  std::chrono::steady_clock::time_point last_collect_{};
  bool started_ = false;
};

}  // namespace conveyor::cuda
