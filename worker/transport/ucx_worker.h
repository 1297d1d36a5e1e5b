// A UCP worker: the progress engine of one channel. Each channel object owns its own
// worker and drives it from one thread at a time, so blocking calls need no locking
// inside UCX. Waiting is event-driven (the worker's wake-up fd), and signal() wakes a
// waiter from any thread, which is how close() reaches a blocked call.
#pragma once
#ifdef CONVEYOR_WITH_UCX

#include <ucp/api/ucp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "worker/transport/ucx_context.h"

namespace conveyor {

class UcxWorker {
 public:
  using Clock = std::chrono::steady_clock;

  // `client_id`, when given, is sent with every connection this worker's endpoints
  // make to a listener (the listener side reads it from the connection request).
  static Expected<std::unique_ptr<UcxWorker>> create(
      std::optional<std::uint64_t> client_id = std::nullopt);

  ~UcxWorker();
  UcxWorker(const UcxWorker&) = delete;
  UcxWorker& operator=(const UcxWorker&) = delete;

  ucp_worker_h handle() const { return worker_; }
  const UcxContext& context() const { return *context_; }

  // Drives communication until nothing more happens; true when anything did.
  bool progress();
  // Sleeps until the worker has something to do, signal() is called, or `timeout`
  // (or the idle bound below) passes. Call after progress() found nothing and the
  // caller's condition is false.
  void wait(std::chrono::milliseconds timeout);
  // Wakes wait(); safe from any thread.
  void signal();

  // Progresses until done() holds (true), or until `deadline` passes or *abort is set
  // (false).
  template <typename Done>
  bool run_until(Done done, Clock::time_point deadline, const std::atomic<bool>* abort = nullptr) {
    while (true) {
      progress();
      if (done()) return true;
      if (abort != nullptr && abort->load()) return false;
      const auto now = Clock::now();
      if (now >= deadline) return false;
      wait(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
           std::chrono::milliseconds(1));
    }
  }

 private:
  // Some transport work raises no wake-up event (a full socket becoming writable
  // again), so a sleep is bounded: briefly right after activity, when such work is
  // likely pending, then doubling while nothing happens, up to a bound that keeps an
  // idle channel cheap.
  static constexpr std::chrono::milliseconds kFirstIdleWait{1};
  static constexpr std::chrono::milliseconds kMaxIdleWait{50};

  UcxWorker(std::shared_ptr<UcxContext> context, ucp_worker_h worker, int event_fd);

  std::shared_ptr<UcxContext> context_;
  ucp_worker_h worker_;
  int event_fd_;  // -1: no wake-up fd; wait() then sleeps briefly instead
  std::chrono::milliseconds idle_wait_ = kFirstIdleWait;
};

}  // namespace conveyor

#endif  // CONVEYOR_WITH_UCX
