// Page-aligned host memory owned by one object: the host tier's pool and the disk
// tier's bounce buffer, both of which O_DIRECT and DMA need aligned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>

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

  std::byte* data() const { return data_.get(); }
  std::uint64_t size() const { return size_; }
  std::span<std::byte> bytes() const { return {data_.get(), static_cast<std::size_t>(size_)}; }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> data_;
  std::uint64_t size_ = 0;
};

}  // namespace conveyor
