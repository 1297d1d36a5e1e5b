// The CPU backend with the pin hooks of a device backend: it records every host range it
// is asked to pin and whether each is still pinned, so that tests of the code that pins
// (the K/V host tier and swap buffers, streamed weights) can check what it asked for
// without a GPU. It keeps bf16 K/V too: the cache only stores bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "tests/forwarding_backend.h"

namespace conveyor::testing {

struct PinnedRange {
  const std::byte* data = nullptr;
  std::size_t bytes = 0;
  bool read_only = false;
  std::shared_ptr<bool> live = std::make_shared<bool>(true);  // false once unpinned
};

class PinRecordingBackend final : public ForwardingBackend {
 public:
  std::vector<PinnedRange> pins;  // in the order asked

  std::unique_ptr<HostPinning> pin_host_memory(void* data, std::size_t bytes) override {
    return record(data, bytes, false);
  }
  std::unique_ptr<HostPinning> pin_host_memory_read_only(const void* data,
                                                         std::size_t bytes) override {
    return record(data, bytes, true);
  }

  std::string name() const override { return "cpu-pinning"; }
  BackendCapabilities capabilities() const override {
    BackendCapabilities caps = cpu_.capabilities();
    caps.kv_dtypes = {DType::kF32, DType::kBF16};
    return caps;
  }

 private:
  class Handle final : public HostPinning {
   public:
    explicit Handle(std::shared_ptr<bool> live) : live_(std::move(live)) {}
    ~Handle() override { *live_ = false; }

   private:
    std::shared_ptr<bool> live_;
  };

  std::unique_ptr<HostPinning> record(const void* data, std::size_t bytes, bool read_only) {
    PinnedRange range;
    range.data = static_cast<const std::byte*>(data);
    range.bytes = bytes;
    range.read_only = read_only;
    pins.push_back(range);
    return std::make_unique<Handle>(range.live);
  }
};

}  // namespace conveyor::testing
