// DeferredActivationChannel: the output of a stage whose next stage is not known yet.
// A stage is loaded before the coordinator links it to the next stage's receiver (the
// receiver's address exists only once that stage is loaded), so the stage actor gets
// this channel at load and the transport is attached when the link arrives.
#pragma once

#include <memory>
#include <mutex>

#include "worker/activation_channel.h"

namespace conveyor {

class DeferredActivationChannel final : public ActivationChannel {
 public:
  // Attaches the transport; sends before this fail (kUnavailable).
  void attach(std::unique_ptr<ActivationChannel> target) {
    std::lock_guard lock(mutex_);
    if (!closed_) target_ = std::shared_ptr<ActivationChannel>(std::move(target));
  }

  ActivationChannelCapabilities capabilities() const override {
    std::shared_ptr<ActivationChannel> target = current();
    return target ? target->capabilities() : ActivationChannelCapabilities{"unlinked"};
  }
  // Sends outside the lock, so that close() can cancel a send that blocks.
  Status send(Activations activations) override {
    std::shared_ptr<ActivationChannel> target;
    {
      std::lock_guard lock(mutex_);
      if (closed_) return Status(ErrorCode::kCancelled, "activation channel closed");
      target = target_;
    }
    if (!target) return Status(ErrorCode::kUnavailable, "stage not linked to the next stage yet");
    return target->send(std::move(activations));
  }
  Expected<Activations> receive() override {
    return Status(ErrorCode::kUnsupported, "a stage's output channel only sends");
  }
  void close() override {
    std::shared_ptr<ActivationChannel> target;
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      target = target_;
    }
    if (target) target->close();
  }

 private:
  std::shared_ptr<ActivationChannel> current() const {
    std::lock_guard lock(mutex_);
    return target_;
  }

  mutable std::mutex mutex_;
  std::shared_ptr<ActivationChannel> target_;
  bool closed_ = false;
};

}  // namespace conveyor
