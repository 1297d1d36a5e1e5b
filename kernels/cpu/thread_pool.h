// A small persistent pool of worker threads for the CPU kernels. Threads are created
// once; each parallel call wakes them (briefly spinning first, because ops come in
// quick succession during a step, then sleeping on a condition variable so an idle
// engine uses no CPU). The calling thread works too, so a pool of size N has N - 1
// worker threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace conveyor {

class ThreadPool {
 public:
  // threads <= 0: one per CPU this process may run on.
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(task, thread) for every task in [0, tasks), spread over the pool;
  // `thread` in [0, size()) identifies the executing thread (for per-thread scratch).
  // Returns when all tasks are done; rethrows the first exception a task threw.
  // Calls from several threads are serialised; a task must not call run() itself.
  template <typename Fn>
  void run(std::int64_t tasks, Fn&& fn) {
    using F = std::remove_reference_t<Fn>;
    run_erased(
        tasks,
        [](void* ctx, std::int64_t task, int thread) { (*static_cast<F*>(ctx))(task, thread); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

  // Splits [0, n) into about size() * chunks_per_thread contiguous, nearly equal
  // ranges (multiples of `align` except the last) and calls fn(begin, end, thread) for
  // each non-empty one. More chunks than threads let the others take over the work of
  // a thread the OS has descheduled.
  template <typename Fn>
  void parallel_ranges(std::int64_t n, std::int64_t align, Fn&& fn, int chunks_per_thread = 1) {
    const std::int64_t units = (n + align - 1) / align;
    const std::int64_t parts =
        std::max<std::int64_t>(1, std::min<std::int64_t>(size() * chunks_per_thread, units));
    run(parts, [&](std::int64_t part, int thread) {
      const std::int64_t begin = std::min(n, units * part / parts * align);
      const std::int64_t end = std::min(n, units * (part + 1) / parts * align);
      if (begin < end) fn(begin, end, thread);
    });
  }

 private:
  using TaskFn = void (*)(void* ctx, std::int64_t task, int thread);

  void run_erased(std::int64_t tasks, TaskFn fn, void* ctx);
  void worker_main(int thread);
  void drain(std::uint32_t job, int thread);

  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one run() at a time
  std::uint32_t last_job_ = 0;

  // Tasks are claimed through claim_ = (job << 32) | next task, so a thread that wakes
  // late for a finished job claims nothing: the caller waits for tasks to finish, never
  // for every worker to wake up (which, on a machine busier than its cores, can take a
  // whole scheduler time slice). Jobs alternate between two slots: a late thread may
  // still read job k's slot while job k + 1 is being set up in the other one, and any
  // claim it then tries fails because claim_ has moved on.
  struct JobSlot {
    std::atomic<TaskFn> fn{nullptr};
    std::atomic<void*> ctx{nullptr};
    std::atomic<std::int64_t> tasks{0};
  };
  JobSlot slots_[2];
  std::atomic<std::uint64_t> claim_{0};
  std::atomic<std::int64_t> done_{0};
  std::exception_ptr error_;
  std::mutex error_mutex_;

  // Wakes the workers: bumped (under wake_mutex_) for every job and at shutdown.
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::mutex wake_mutex_;
  std::condition_variable wake_;
};

}  // namespace conveyor
