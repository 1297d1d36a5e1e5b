#include "worker/kv_store/io_queue.h"

#include <utility>

namespace conveyor {

IoQueue::IoQueue() : thread_([this] { loop(); }) {}

IoQueue::~IoQueue() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  queued_.notify_one();
  thread_.join();
}

std::uint64_t IoQueue::submit(std::function<void()> job) {
  std::uint64_t ticket = 0;
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
    ticket = ++submitted_;
  }
  queued_.notify_one();
  return ticket;
}

void IoQueue::wait(std::uint64_t ticket) {
  std::unique_lock lock(mutex_);
  done_.wait(lock, [&] { return completed_ >= ticket; });
}

std::uint64_t IoQueue::last_ticket() const {
  std::lock_guard lock(mutex_);
  return submitted_;
}

void IoQueue::loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    queued_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and everything queued has run
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
    ++completed_;
    done_.notify_all();
  }
}

}  // namespace conveyor
