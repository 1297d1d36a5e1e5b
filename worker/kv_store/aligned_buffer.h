// Page-aligned host memory owned by one object: the host tier's pool and the disk
// tier's bounce buffer, both of which O_DIRECT and DMA need aligned. It may be pinned
// for a device (pin()), and then stays pinned until it is freed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>

#include "kernels/host_pinning.h"

namespace conveyor {

inline constexpr std::uint64_t round_up(std::uint64_t value, std::uint64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // `bytes` rounded up to `alignment`. Throws Error(kResourceExhausted) when the host
  // cannot provide it.
  AlignedBuffer(std::uint64_t bytes, std::uint64_t alignment);
  AlignedBuffer(AlignedBuffer&& other) noexcept = default;
  // Unpins the memory this buffer held before freeing it.
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;

  std::byte* data() const { return data_.get(); }
  std::uint64_t size() const { return size_; }
  std::span<std::byte> bytes() const { return {data_.get(), static_cast<std::size_t>(size_)}; }

  // Pins the whole buffer with `pin` (an empty one pins nothing) unless it is pinned
  // already; returns whether it is pinned now.
  bool pin(const PinHostMemory& pin);
  bool pinned() const { return pinning_ != nullptr; }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> data_;
  std::uint64_t size_ = 0;
  // Last: released before data_ is freed, as a pinned range must be.
  std::unique_ptr<HostPinning> pinning_;
};

}  // namespace conveyor
