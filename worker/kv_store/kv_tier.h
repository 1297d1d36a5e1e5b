// A tier of K/V block storage below the backend's cache: fixed-size slots, each holding
// one swapped-out block (K and V of every layer the worker holds). When the device cache
// is full, the scheduler preempts a sequence by copying its blocks into slots of a tier
// and copies them back before the sequence runs again.
//
// Every slot is exactly one block, so a tier never fragments: any free slot fits any
// block. A tier is not thread-safe; its owner serializes calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "common/status.h"

namespace conveyor {

// Slots start at multiples of this, in host memory and on disk alike: page-aligned host
// slots can be registered for DMA and written to O_DIRECT files without a bounce copy.
inline constexpr std::uint64_t kKvSlotAlignment = 4096;

class KvTier {
 public:
  virtual ~KvTier() = default;

  virtual std::string name() const = 0;  // "host", "disk"
  virtual std::uint64_t block_bytes() const = 0;
  virtual std::int64_t capacity_blocks() const = 0;
  virtual std::int64_t used_blocks() const = 0;

  // A free slot, or nullopt when every slot holds a block.
  virtual std::optional<std::int64_t> allocate() = 0;
  // Returns a slot from allocate(). Throws Error(kInvalidArgument) for a slot that is
  // not allocated: releasing twice would hand one slot to two sequences.
  virtual void release(std::int64_t slot) = 0;

  // `block` is exactly block_bytes() long (kInvalidArgument otherwise) and the slot is
  // allocated (kInvalidArgument otherwise). read() refuses a slot that has not been
  // written since it was allocated, or whose last write failed, with kNotFound: the
  // bytes there belong to an earlier block and must never reach a sequence.
  virtual Status write(std::int64_t slot, std::span<const std::byte> block) = 0;
  virtual Status read(std::int64_t slot, std::span<std::byte> block) = 0;
};

}  // namespace conveyor
