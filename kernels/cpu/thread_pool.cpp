#include "kernels/cpu/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#if defined(__linux__)
#include <sched.h>
#endif

namespace conveyor {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long an idle worker spins before sleeping: long enough to bridge the gap between
// two ops of one step, short enough not to burn a core between steps.
constexpr auto kSpinTime = std::chrono::microseconds(200);

// CPUs this process may run on: a container or taskset may allow fewer than the
// machine has, and threads beyond them only contend.
int available_cpus() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = available_cpus();
  workers_.reserve(static_cast<std::size_t>(threads - 1));
  for (int t = 1; t < threads; ++t)
    workers_.emplace_back([this, t] { worker_main(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    stop_.store(true);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& w : workers_)
    w.join();
}

void ThreadPool::drain(std::uint32_t job, int thread) {
  for (;;) {
    std::uint64_t claim = claim_.load(std::memory_order_acquire);
    if (claim >> 32 != job) return;
    // Read before claiming; if the claim succeeds, `job` was still current, so its slot
    // had not been reused and the count is this job's.
    const JobSlot& slot = slots_[job & 1];
    const std::int64_t tasks = slot.tasks.load(std::memory_order_relaxed);
    const auto task = static_cast<std::int64_t>(claim & 0xffffffffu);
    if (task >= tasks) return;
    if (!claim_.compare_exchange_weak(claim, claim + 1, std::memory_order_acq_rel)) continue;
    try {
      slot.fn.load(std::memory_order_relaxed)(slot.ctx.load(std::memory_order_relaxed), task,
                                              thread);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
    done_.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::run_erased(std::int64_t tasks, TaskFn fn, void* ctx) {
  if (tasks <= 0) return;
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  if (workers_.empty() || tasks == 1) {
    for (std::int64_t t = 0; t < tasks; ++t)
      fn(ctx, t, 0);
    return;
  }
  if (tasks > 0xffffffffll) throw std::length_error("thread pool: too many tasks in one run");
  const std::uint32_t job = ++last_job_;
  JobSlot& slot = slots_[job & 1];
  slot.fn.store(fn, std::memory_order_relaxed);
  slot.ctx.store(ctx, std::memory_order_relaxed);
  slot.tasks.store(tasks, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  error_ = nullptr;
  claim_.store(static_cast<std::uint64_t>(job) << 32, std::memory_order_release);
  {
    // Under the lock so that a worker between its predicate check and its wait
    // cannot miss the bump.
    std::lock_guard<std::mutex> lock(wake_mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  drain(job, 0);
  for (int spins = 0; done_.load(std::memory_order_acquire) != tasks; ++spins) {
    if (spins < 4096) {
      cpu_relax();
    } else {
      std::this_thread::yield();  // a task's thread was descheduled: let it run
    }
  }
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::worker_main(int thread) {
  std::uint64_t seen = 0;
  for (;;) {
    const auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      cpu_relax();
      if (++spins % 64 == 0 && std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(wake_mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        break;
      }
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    const auto job = static_cast<std::uint32_t>(claim_.load(std::memory_order_acquire) >> 32);
    drain(job, thread);
  }
}

}  // namespace conveyor
