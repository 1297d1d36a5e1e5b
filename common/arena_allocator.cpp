#include "common/arena_allocator.h"

#include <algorithm>
#include <string>

#include "common/status.h"

namespace conveyor {

ArenaAllocator::ArenaAllocator(std::uint64_t capacity, std::uint64_t alignment)
    : capacity_(capacity / std::max<std::uint64_t>(alignment, 1) *
                std::max<std::uint64_t>(alignment, 1)),
      alignment_(std::max<std::uint64_t>(alignment, 1)) {
  if ((alignment_ & (alignment_ - 1)) != 0) {
    fail(ErrorCode::kInvalidArgument, "arena: alignment must be a power of two");
  }
  if (capacity_ > 0) free_.emplace(0, capacity_);
}

std::uint64_t ArenaAllocator::round_up(std::uint64_t bytes) const {
  const std::uint64_t units = bytes / alignment_ + (bytes % alignment_ != 0 ? 1 : 0);
  return std::max<std::uint64_t>(units, 1) * alignment_;
}

std::optional<std::uint64_t> ArenaAllocator::allocate(std::uint64_t bytes) {
  if (bytes > capacity_) return std::nullopt;
  const std::uint64_t length = round_up(bytes);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < length) continue;
    const std::uint64_t offset = it->first;
    const std::uint64_t rest = it->second - length;
    free_.erase(it);
    if (rest > 0) free_.emplace(offset + length, rest);
    held_.emplace(offset, length);
    used_ += length;
    return offset;
  }
  return std::nullopt;
}

void ArenaAllocator::release(std::uint64_t offset) {
  const auto held = held_.find(offset);
  if (held == held_.end()) {
    fail(ErrorCode::kInternal,
         "arena: release of offset " + std::to_string(offset) + ", which is not allocated");
  }
  std::uint64_t begin = offset;
  std::uint64_t length = held->second;
  used_ -= length;
  held_.erase(held);
  // Merge with the free range after, then with the one before.
  const auto next = free_.find(begin + length);
  if (next != free_.end()) {
    length += next->second;
    free_.erase(next);
  }
  auto after = free_.lower_bound(begin);
  if (after != free_.begin()) {
    const auto before = std::prev(after);
    if (before->first + before->second == begin) {
      begin = before->first;
      length += before->second;
      free_.erase(before);
    }
  }
  free_.emplace(begin, length);
}

std::uint64_t ArenaAllocator::largest_free() const {
  std::uint64_t largest = 0;
  for (const auto& [offset, length] : free_)
    largest = std::max(largest, length);
  return largest;
}

}  // namespace conveyor
