#include "worker/kv_store/aligned_buffer.h"

#include <string>
#include <utility>

#include "common/status.h"

namespace conveyor {

AlignedBuffer::AlignedBuffer(std::uint64_t bytes, std::uint64_t alignment)
    : size_(round_up(bytes, alignment)) {
  // std::aligned_alloc requires the size to be a multiple of the alignment.
  data_.reset(static_cast<std::byte*>(
      std::aligned_alloc(static_cast<std::size_t>(alignment), static_cast<std::size_t>(size_))));
  if (!data_) {
    fail(ErrorCode::kResourceExhausted,
         "cannot allocate " + std::to_string(size_) + " bytes of aligned host memory");
  }
}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    // Member-wise assignment would free the old memory while it is still pinned.
    pinning_.reset();
    data_ = std::move(other.data_);
    size_ = std::exchange(other.size_, 0);
    pinning_ = std::move(other.pinning_);
  }
  return *this;
}

bool AlignedBuffer::pin(const PinHostMemory& pin) {
  if (pinning_ == nullptr && pin && size_ > 0) pinning_ = pin(bytes());
  return pinned();
}

}  // namespace conveyor
