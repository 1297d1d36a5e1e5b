// Host memory page-locked (pinned) for a device's DMA engines: copies to and from it run
// asynchronously at the bus's full rate, instead of being staged by the driver through
// a bounce buffer of its own. A backend pins (Backend::pin_host_memory); the owners of
// large host buffers (the K/V host tier, streamed weights) ask through PinHostMemory,
// without knowing which backend answers.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>

namespace conveyor {

// Keeps a range pinned while it lives. Its holder keeps the memory itself alive (and
// unmoved) for at least as long as the handle.
class HostPinning {
 public:
  virtual ~HostPinning() = default;
};

// Pins a whole range for a device, or answers nullptr: nothing to pin for (a CPU
// backend), or the driver refused (the range then works unpinned, only slower).
using PinHostMemory = std::function<std::unique_ptr<HostPinning>(std::span<std::byte>)>;

}  // namespace conveyor
