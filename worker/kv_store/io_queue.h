// IoQueue: one background thread that runs jobs (a tier's reads and writes) in the
// order queued, so that slow storage I/O overlaps the step the stage computes meanwhile.
// Each job gets a ticket; wait(t) returns once job t and every job before it have run.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace conveyor {

class IoQueue {
 public:
  IoQueue();
  ~IoQueue();  // runs what is queued, then joins
  IoQueue(const IoQueue&) = delete;
  IoQueue& operator=(const IoQueue&) = delete;

  // `job` must not throw: it records its own failure where its waiter looks.
  std::uint64_t submit(std::function<void()> job);
  // Until job `ticket` (0: none) and all before it have run.
  void wait(std::uint64_t ticket);
  void wait_all() { wait(last_ticket()); }
  std::uint64_t last_ticket() const;

 private:
  void loop();

  mutable std::mutex mutex_;
  std::condition_variable queued_;
  std::condition_variable done_;
  std::deque<std::function<void()>> jobs_;
  std::uint64_t submitted_ = 0;  // tickets are 1, 2, ...
  std::uint64_t completed_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace conveyor
