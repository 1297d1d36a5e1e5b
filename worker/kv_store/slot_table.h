// The bookkeeping shared by the K/V tiers: which slots are free, and which hold a block
// that may be read back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/status.h"

namespace conveyor {

class SlotTable {
 public:
  // Throws Error(kInvalidArgument) for a non-positive capacity or block size.
  SlotTable(std::int64_t capacity, std::uint64_t block_bytes);

  std::int64_t capacity() const { return static_cast<std::int64_t>(states_.size()); }
  std::int64_t used() const { return capacity() - static_cast<std::int64_t>(free_.size()); }

  // The most recently released slot first: its pages are the likeliest to be warm.
  std::optional<std::int64_t> allocate();
  // Throws Error(kInvalidArgument) for a slot that is not allocated.
  void release(std::int64_t slot);

  // Checks a write of `bytes` to `slot` and marks the slot unreadable until
  // finish_write(): a write that fails halfway leaves a torn block behind.
  Status begin_write(std::int64_t slot, std::size_t bytes);
  void finish_write(std::int64_t slot);
  // Checks a read of `bytes` from `slot`.
  Status check_read(std::int64_t slot, std::size_t bytes) const;

 private:
  enum class SlotState : std::uint8_t { kFree, kAllocated, kWritten };
  Status check_allocated(std::int64_t slot, std::size_t bytes) const;

  std::uint64_t block_bytes_;
  std::vector<SlotState> states_;
  std::vector<std::int64_t> free_;  // a stack
};

}  // namespace conveyor
