// ActivationChannel: how stage k hands its hidden states to stage k + 1. The
// in-process channel moves the buffer (no copy); network transports (UCX, NCCL)
// implement the same interface and declare what they can do.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/channel.h"
#include "common/status.h"

namespace conveyor {

struct Activations {
  std::uint64_t step = 0;
  std::vector<float> hidden;  // f32 [tokens, hidden], host memory
};

struct ActivationChannelCapabilities {
  std::string transport;       // "in-process", "ucx", "nccl"
  bool device_memory = false;  // sends device buffers without staging through the host
  bool zero_copy = false;      // the receiver gets the sender's buffer itself
};

class ActivationChannel {
 public:
  virtual ~ActivationChannel() = default;
  virtual ActivationChannelCapabilities capabilities() const = 0;
  // kCancelled once the channel is closed.
  virtual Status send(Activations activations) = 0;
  // Blocks for the next activations; kCancelled once closed and drained.
  virtual Expected<Activations> receive() = 0;
  virtual void close() = 0;
};

class InProcessActivationChannel final : public ActivationChannel {
 public:
  ActivationChannelCapabilities capabilities() const override {
    return {"in-process", false, true};
  }
  Status send(Activations activations) override {
    if (!queue_.send(std::move(activations)))
      return Status(ErrorCode::kCancelled, "activation channel closed");
    return {};
  }
  Expected<Activations> receive() override {
    auto a = queue_.receive();
    if (!a) return Status(ErrorCode::kCancelled, "activation channel closed");
    return std::move(*a);
  }
  void close() override { queue_.close(); }

 private:
  Channel<Activations> queue_;
};

}  // namespace conveyor
