// Arrays laid out in one host buffer, each 16-byte aligned, so that one copy moves them
// all to the device (a step's metadata, a sampling call's rows).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace conveyor::cuda {

class HostImage {
 public:
  // Appends `bytes` from `data` (zeros when it is null: room the device fills); returns
  // their offset in the image.
  std::size_t place(const void* data, std::size_t bytes) {
    const std::size_t offset = (bytes_.size() + 15) / 16 * 16;
    bytes_.resize(offset + bytes);
    if (bytes > 0 && data != nullptr) std::memcpy(bytes_.data() + offset, data, bytes);
    return offset;
  }
  const std::uint8_t* data() const { return bytes_.data(); }
  std::size_t size() const { return bytes_.size(); }

 private:
  std::vector<std::uint8_t> bytes_;
};

}  // namespace conveyor::cuda
