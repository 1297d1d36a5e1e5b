// What a receiving transport has taken off the wire and not yet handed to receive():
// activations, or the errors met on the way (a lost sender, a refused message), in
// arrival order. The transport's own thread pushes; receive() pops, with an optional
// deadline. The transport bounds it by checking size() before taking in more, so a
// full inbox leaves further messages with the sender (back-pressure).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "common/status.h"
#include "worker/activation_channel.h"

namespace conveyor {

struct ReceivedActivations {
  Activations activations;
  std::uint64_t epoch = 0;  // the sender's epoch when it sent them
};

class ActivationInbox {
 public:
  using Clock = std::chrono::steady_clock;

  // Dropped once closed.
  void push(Expected<ReceivedActivations> item) {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    items_.push_back(std::move(item));
    ready_.notify_one();
  }

  // The next item; kCancelled once closed and drained; kUnavailable when `deadline`
  // passes first.
  Expected<ReceivedActivations> pop(std::optional<Clock::time_point> deadline) {
    std::unique_lock lock(mutex_);
    const auto ready = [&] { return closed_ || !items_.empty(); };
    if (deadline) {
      if (!ready_.wait_until(lock, *deadline, ready)) {
        return Status(ErrorCode::kUnavailable, "no activations arrived in time");
      }
    } else {
      ready_.wait(lock, ready);
    }
    if (items_.empty()) return Status(ErrorCode::kCancelled, "activation channel closed");
    Expected<ReceivedActivations> item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    ready_.notify_all();
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return items_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Expected<ReceivedActivations>> items_;
  bool closed_ = false;
};

}  // namespace conveyor
